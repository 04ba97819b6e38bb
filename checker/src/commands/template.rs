//! `cargo lab template DIR`: the repository an instructor hands to a class.
//!
//! It is the course as committed (`git archive HEAD`), without what would
//! give the labs away: no `solutions/`, no fixtures (they are patches of
//! the solutions), the book's student edition (every `<details
//! class="reference">` block removed from the chapters, and `student =
//! true` for the book's preprocessor; a type the starter gives, shown
//! open from the solution, is written out), and none of the course's own
//! machinery (its CI, the Gradescope scripts, the contributors' guide). It
//! adds the GitHub Classroom workflow and a README for students. The
//! checker stays whole: students run `cargo lab` in it as in the course.
//!
//! The Gradescope zip (`autograder/make-zip.sh`) is made from the same
//! template.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::Verdict;
use crate::labs;
use crate::stage::course_root;

/// What the template leaves out, as paths from the course's root.
const LEFT_OUT: &[&str] = &[
    "solutions",
    "checker/fixtures",
    "autograder",
    ".ci",
    ".github/workflows",
    "CONTRIBUTING.md",
];

pub fn run(dir: &Path) -> Result<Verdict> {
    let course = course_root();
    if dir.exists()
        && fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} exists and is not empty: name a new directory for the template",
            dir.display()
        );
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let written = copy_course(&course, dir).and_then(|from| write(dir, &from).map(|()| from));
    let from = match written {
        Ok(from) => from,
        Err(e) => {
            // Nothing half-made is left to be pushed by mistake (the
            // directory was empty or new).
            let _ = fs::remove_dir_all(dir);
            return Err(e.context(format!("no template written to {}", dir.display())));
        }
    };
    eprintln!(
        "Wrote the course for students to {} ({from}).",
        dir.display()
    );
    match commit(dir) {
        Ok(()) => eprintln!("It is a git repository with one commit."),
        Err(e) => eprintln!("note: it is not committed ({e:#}); commit it before you push it."),
    }
    eprintln!(
        "\nNext: push it to GitHub, mark it a template repository (Settings > General),\n\
         and choose it as the starter code of a GitHub Classroom assignment.\n\
         Students run `cargo lab` in their copy; each push grades every lab."
    );
    Ok(Verdict::Passed)
}

/// Changes a freshly copied course into the students' edition. Fails
/// when some chapter would still bring in code from `solutions/`.
pub fn write(dir: &Path, from: &str) -> Result<()> {
    // The chapters first, while the copy still has solutions/ to compare
    // the given code with.
    let book = dir.join("book");
    let toml = book.join("book.toml");
    if toml.is_file() {
        let text = fs::read_to_string(&toml).context("reading book/book.toml")?;
        fs::write(&toml, student_edition_toml(&text)).context("writing book/book.toml")?;
    }
    let mut chapters = Vec::new();
    markdown_files(&book.join("src"), &mut chapters)?;
    for page in chapters {
        let text =
            fs::read_to_string(&page).with_context(|| format!("reading {}", page.display()))?;
        let student = strip_reference(&text).with_context(|| format!("in {}", page.display()))?;
        let student = inline_given(&given_from_labs(&student), dir);
        fs::write(&page, student).with_context(|| format!("writing {}", page.display()))?;
    }

    for rel in LEFT_OUT {
        let path = dir.join(rel);
        if path.is_dir() {
            fs::remove_dir_all(&path)
        } else if path.exists() {
            fs::remove_file(&path)
        } else {
            Ok(())
        }
        .with_context(|| format!("removing {}", path.display()))?;
    }
    let workflows = dir.join(".github/workflows");
    fs::create_dir_all(&workflows).with_context(|| format!("creating {}", workflows.display()))?;
    fs::write(
        workflows.join("classroom.yml"),
        super::classroom::workflow(),
    )
    .context("writing the Classroom workflow")?;
    fs::write(dir.join("README.md"), student_readme(from)).context("writing README.md")?;

    let leaks = includes_from_solutions(dir)?;
    if !leaks.is_empty() {
        bail!(
            "the template would still include code from solutions/ (put it in a <details class=\"reference\"> block, or include the file from labs/ if it is given code):\n  {}",
            leaks.join("\n  ")
        );
    }
    Ok(())
}

/// Copies the committed course (`git archive HEAD`) into `dir`; without
/// git, the working files minus build output. Says where it came from.
fn copy_course(course: &Path, dir: &Path) -> Result<String> {
    let head = Command::new("git")
        .arg("-C")
        .arg(course)
        .args(["rev-parse", "--short", "HEAD"])
        .stderr(Stdio::null())
        .output();
    let Some(commit) = head
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    else {
        copy_working_files(course, dir, Path::new(""))?;
        return Ok(format!(
            "the files in {}, which is not a git checkout",
            course.display()
        ));
    };
    let mut archive = Command::new("git")
        .arg("-C")
        .arg(course)
        .args(["archive", "--format=tar", "HEAD"])
        .stdout(Stdio::piped())
        .spawn()
        .context("running git archive")?;
    let tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dir)
        .stdin(archive.stdout.take().expect("piped"))
        .status()
        .context("running tar to unpack the course")?;
    let archived = archive.wait().context("waiting for git archive")?;
    if !archived.success() || !tar.success() {
        bail!("could not copy the course from git (git archive: {archived}, tar: {tar})");
    }
    let dirty = Command::new("git")
        .arg("-C")
        .arg(course)
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    Ok(if dirty {
        format!("commit {commit}; changes not committed are left out")
    } else {
        format!("commit {commit}")
    })
}

/// The working files under `course/rel`, without build output or git.
fn copy_working_files(course: &Path, dir: &Path, rel: &Path) -> Result<()> {
    let from = course.join(rel);
    for e in fs::read_dir(&from).with_context(|| format!("listing {}", from.display()))? {
        let e = e?;
        let rel = rel.join(e.file_name());
        let skip = ["target", ".git", "book/book", "solutions/target"];
        if skip.iter().any(|s| rel == Path::new(s)) {
            continue;
        }
        let ty = e.file_type()?;
        if ty.is_dir() {
            fs::create_dir_all(dir.join(&rel))?;
            copy_working_files(course, dir, &rel)?;
        } else if ty.is_file() {
            fs::copy(e.path(), dir.join(&rel))
                .with_context(|| format!("copying {}", rel.display()))?;
        }
    }
    Ok(())
}

/// `git init` and one commit, so that the students' repository starts
/// with the untouched starters (the course's tests take them from there).
fn commit(dir: &Path) -> Result<()> {
    let git = |args: &[&str]| -> Result<()> {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .context("running git")?;
        if !out.status.success() {
            bail!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    };
    git(&["init", "--quiet", "--initial-branch=main"])?;
    git(&["add", "--all"])?;
    git(&[
        "commit",
        "--quiet",
        "--message",
        "The course, as handed out (cargo lab template)",
    ])
}

/// The chapter without its `<details class="reference">` blocks: each
/// starts at a line `<details class="reference">` and ends at the next
/// line `</details>`.
pub fn strip_reference(text: &str) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut inside = None;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim();
        match inside {
            None if bare == r#"<details class="reference">"# => inside = Some(n + 1),
            None => out.push_str(line),
            Some(_) if bare == "</details>" => inside = None,
            Some(_) => {}
        }
    }
    if let Some(line) = inside {
        bail!("the <details class=\"reference\"> of line {line} has no </details>");
    }
    Ok(out)
}

/// Includes of given code (`src/bin/`, `src/given.rs`) taken from
/// `labs/` instead of `solutions/`: the two trees hold the same files
/// there (a test of the checker makes sure).
fn given_from_labs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let given = line.contains("{{#include")
            && (line.contains("/src/bin/") || line.contains("/src/given.rs"));
        if given {
            out.push_str(&line.replace("../solutions/", "../labs/"));
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Open includes of the solution's library that show code the starter
/// gives as it is (a type the student uses, not writes), replaced by that
/// code: the template has no solutions/ to include it from, and the
/// starter has no anchor around it. Any other include is left as it is
/// (and the template then refuses it). `root` holds `solutions/` and
/// `labs/`; the chapters are in `root/book/src`, so their includes start
/// with `../../`.
fn inline_given(text: &str, root: &Path) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        match given_text(line.trim(), root) {
            Some(code) => out.push_str(&code),
            None => out.push_str(line),
        }
    }
    out
}

/// For `{{#include ../../solutions/PATH:ANCHOR}}`: the anchored text, when
/// every line of code in it is a line of `labs/PATH` (the rule of
/// `book/check.py` for code shown open), keeping only the lines the
/// starter has: a comment the solution adds is left out with the rest.
fn given_text(line: &str, root: &Path) -> Option<String> {
    let target = line
        .strip_prefix("{{#include ../../solutions/")?
        .strip_suffix("}}")?
        .trim();
    let (path, anchor) = target.split_once(':')?;
    if anchor.is_empty() || anchor.starts_with(|c: char| c.is_ascii_digit()) {
        return None; // a whole file or a range of lines: not a given type
    }
    let solution = fs::read_to_string(root.join("solutions").join(path)).ok()?;
    let starter = fs::read_to_string(root.join("labs").join(path)).ok()?;
    let code = anchored(&solution, anchor)?;
    let given: std::collections::HashSet<&str> = starter.lines().map(str::trim).collect();
    let is_code = |l: &str| {
        let l = l.trim();
        !l.is_empty() && !l.starts_with("//") && !l.starts_with("#[") && !l.starts_with("#![")
    };
    let mut lines = code.lines().filter(|l| is_code(l)).peekable();
    if lines.peek().is_none() || !lines.all(|l| given.contains(l.trim())) {
        return None;
    }
    Some(
        code.split_inclusive('\n')
            .filter(|l| l.trim().is_empty() || given.contains(l.trim()))
            .collect(),
    )
}

/// The lines between `ANCHOR: name` and `ANCHOR_END: name`, without any
/// anchor lines, as mdBook includes them.
fn anchored(text: &str, name: &str) -> Option<String> {
    let mut inside = false;
    let mut found = false;
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let anchor = |tag: &str| {
            line.split_once(tag)
                .is_some_and(|(_, rest)| rest.trim() == name)
        };
        if anchor("ANCHOR_END:") {
            inside = false;
        } else if anchor("ANCHOR:") {
            inside = true;
            found = true;
        } else if inside && !line.contains("ANCHOR:") && !line.contains("ANCHOR_END:") {
            out.push_str(line);
        }
    }
    found.then_some(out)
}

/// `student = true` for the book's `[preprocessor.edition]`, so that the
/// student edition is what builds (the chapters are stripped already; this
/// keeps the preprocessor agreeing with them).
fn student_edition_toml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_edition = false;
    for line in text.split_inclusive('\n') {
        let bare = line.trim();
        if bare.starts_with('[') {
            in_edition = bare == "[preprocessor.edition]";
        }
        let key = bare.split('=').next().unwrap_or("").trim();
        if in_edition && key == "student" {
            out.push_str("student = true\n");
        } else {
            out.push_str(line);
        }
    }
    out
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries {
        let path = e?.path();
        if path.is_dir() {
            markdown_files(&path, out)?;
        } else if path.extension().is_some_and(|x| x == "md") {
            out.push(path);
        }
    }
    Ok(())
}

/// Every line of a Markdown file under `dir` (what mdBook reads) with an
/// `{{#include` that names `solutions/`, as `FILE:LINE: TEXT`.
pub fn includes_from_solutions(dir: &Path) -> Result<Vec<String>> {
    fn walk(dir: &Path, root: &Path, found: &mut Vec<String>) -> Result<()> {
        for e in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = e?.path();
            if path
                .file_name()
                .is_some_and(|n| n == ".git" || n == "target")
            {
                continue;
            }
            if path.is_dir() {
                walk(&path, root, found)?;
                continue;
            }
            if path.extension().is_none_or(|x| x != "md") {
                continue;
            }
            let text =
                fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            for (n, line) in text.lines().enumerate() {
                if line.contains("{{#include") && line.contains("solutions/") {
                    let rel = path.strip_prefix(root).unwrap_or(&path);
                    found.push(format!("{}:{}: {}", rel.display(), n + 1, line.trim()));
                }
            }
        }
        Ok(())
    }
    let mut found = Vec::new();
    walk(dir, dir, &mut found)?;
    Ok(found)
}

fn student_readme(from: &str) -> String {
    let mut table = String::from("| # | lab | topic |\n|---|---|---|\n");
    for lab in labs::ALL {
        table.push_str(&format!(
            "| {:02} | [{}](labs/{}) | {} |\n",
            lab.number,
            lab.slug,
            lab.dir(),
            lab.title
        ));
    }
    let mut out = Vec::new();
    let _ = write!(
        out,
        "# Unix interprocess communication, in Rust

Your copy of the course. Each lab is a Rust crate in `labs/`: you fill in
its library (`labs/NN-topic/src/lib.rs` and its modules), and the checker
tells you what works and, when something hangs, where each process is
stuck. The book explains each lab: read it in `book/` (below).

{table}
## What you need

**Linux, or WSL2 on Windows**, with Rust ([rustup](https://rustup.rs)) and
git. The labs use `fork`, POSIX IPC and `/proc`, which macOS and native
Windows do not have.

**On macOS, or Windows without WSL2**: open this repository in a
container. In GitHub Codespaces (the green *Code* button, then
*Codespaces*), or in VS Code with the Dev Containers extension and Docker
(*Reopen in Container*): everything is installed and the checker is built
when the container is created (see `.devcontainer/`).

## Working on a lab

```sh
cargo lab              # every lab at a glance, and what to do next
cargo lab check 1      # build lab 01 and run its scenarios
cargo lab watch 1      # check again on every save
cargo lab hint 1       # one hint at a time
cargo lab --help       # everything else
```

The first `cargo lab` compiles the checker (a progress bar shows how far it
is). `cargo lab check` exits with 0 when every scenario passes, 1 when
something fails, and 2 when it could not run.

## Handing in

Commit and push. Every push runs the checker on GitHub (the *Actions* tab,
workflow *Autograding*) and reports your points per scenario; the same
scenarios run on your machine with `cargo lab check --all`.

## The book

Install mdBook once (`cargo install mdbook --locked`), then
`mdbook serve book --open`.

<!-- Written by `cargo lab template` from {from}. -->
"
    );
    String::from_utf8(out).expect("UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_blocks_are_stripped_whole() {
        let chapter = "# Fork\n\nThe task.\n\n<details class=\"reference\">\n<summary>The reference <code>start</code></summary>\n\n```rust\n{{#include ../../solutions/01-fork/src/lib.rs:start}}\n```\n\n</details>\n\n<details><summary>Answer</summary>\n\nKept.\n</details>\n";
        let student = strip_reference(chapter).unwrap();
        assert_eq!(
            student,
            "# Fork\n\nThe task.\n\n\n<details><summary>Answer</summary>\n\nKept.\n</details>\n"
        );
        assert!(strip_reference("<details class=\"reference\">\nno end\n").is_err());
    }

    #[test]
    fn given_code_is_included_from_the_starter() {
        let text = "{{#include ../../solutions/01-fork/src/bin/twice.rs:main}}\n{{#include ../../solutions/01-fork/src/lib.rs:start}}\n";
        assert_eq!(
            given_from_labs(text),
            "{{#include ../../labs/01-fork/src/bin/twice.rs:main}}\n{{#include ../../solutions/01-fork/src/lib.rs:start}}\n"
        );
    }

    #[test]
    fn a_type_the_starter_gives_is_written_out() {
        let root = std::env::temp_dir().join(format!("lab-inline-test-{}", std::process::id()));
        for (tree, body) in [
            (
                "solutions",
                "// ANCHOR: pool\npub struct Pool;\n// ANCHOR_END: pool\n// ANCHOR: run\nfn run() { work() }\n// ANCHOR_END: run\n",
            ),
            (
                "labs",
                "#[allow(dead_code)]\npub struct Pool;\nfn run() { todo!() }\n",
            ),
        ] {
            fs::create_dir_all(root.join(tree).join("01-x/src")).unwrap();
            fs::write(root.join(tree).join("01-x/src/lib.rs"), body).unwrap();
        }
        let chapter = "{{#include ../../solutions/01-x/src/lib.rs:pool}}\n{{#include ../../solutions/01-x/src/lib.rs:run}}\n";
        assert_eq!(
            inline_given(chapter, &root),
            "pub struct Pool;\n{{#include ../../solutions/01-x/src/lib.rs:run}}\n"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_book_toml_asks_for_the_student_edition() {
        let toml = "[book]\ntitle = \"x\"\n\n[preprocessor.edition]\ncommand = \"python3 edition.py\"\nstudent = false\n\n[output.html]\nstudent = false\n";
        assert_eq!(
            student_edition_toml(toml),
            "[book]\ntitle = \"x\"\n\n[preprocessor.edition]\ncommand = \"python3 edition.py\"\nstudent = true\n\n[output.html]\nstudent = false\n"
        );
    }
}
