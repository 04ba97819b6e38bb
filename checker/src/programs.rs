//! A lab's given programs built as one program that dispatches on the
//! name it was started by (as busybox does), in the checker's staged copy
//! only.
//!
//! Each file in `src/bin/` is its own crate to cargo: compiled on its own
//! and linked on its own, against the lab's library and every dependency.
//! A class is graded, and the course verified, by building every lab again
//! and again, and most of that time went to those eight or so separate
//! compilations and links per lab. Bundled, lab 01 builds in about 0.35
//! CPU-seconds instead of 0.9 (`checker/benches/README.md`).
//!
//! Nothing a student sees changes: `labs/NN-slug/` keeps its programs as
//! they are, `cargo run --bin NAME` works as before, and compiler messages
//! and panics still name `src/bin/NAME.rs` and the same lines. In the
//! staged copy, each program's `fn main` becomes `pub fn main` (on the same
//! line), the manifest turns off cargo's discovery of `src/bin/`, and a
//! file of the checker's own, [`DISPATCHER`], declares each program as a
//! module by its path and calls the `main` its name selects. The programs
//! are then hard links to that one file, each by its own name, so that
//! `/proc/PID/comm`, `/proc/PID/exe` and `argv[0]` are the program's.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The file the staged manifest builds as the lab's one program.
pub const DISPATCHER: &str = "lab-programs.rs";
/// Its name, as cargo reports the artifact.
pub const BUNDLE: &str = "lab-programs";

/// Rewrites a staged lab's `files` (paths relative to the lab) so that
/// cargo builds its programs as one. Returns the programs' names, sorted.
pub fn bundle(files: &mut Vec<(PathBuf, Vec<u8>)>) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for (path, bytes) in files.iter_mut() {
        let Some(name) = program_name(path) else {
            continue;
        };
        let text = std::str::from_utf8(bytes)
            .with_context(|| format!("{} is not UTF-8", path.display()))?;
        *bytes = public_main(text)
            .with_context(|| format!("bundling the program {}", path.display()))?
            .into_bytes();
        names.push(name);
    }
    names.sort();
    if names.is_empty() {
        return Ok(names);
    }
    let Some((_, manifest)) = files.iter_mut().find(|(p, _)| p == Path::new("Cargo.toml")) else {
        bail!("the lab has programs but no Cargo.toml");
    };
    let text = std::str::from_utf8(manifest).context("the lab's Cargo.toml is not UTF-8")?;
    *manifest = bundled_manifest(text)?.into_bytes();
    files.push((PathBuf::from(DISPATCHER), dispatcher(&names).into_bytes()));
    Ok(names)
}

/// `src/bin/NAME.rs` → `NAME`.
fn program_name(path: &Path) -> Option<String> {
    let parent = path.parent()?;
    if parent != Path::new("src/bin") || path.extension()? != "rs" {
        return None;
    }
    Some(path.file_stem()?.to_str()?.to_string())
}

/// The program's text with its one top-level `fn main(` made public.
fn public_main(text: &str) -> Result<String> {
    let found = text.match_indices("\nfn main(").count();
    if found != 1 {
        bail!("expected one line starting with `fn main(`, found {found}");
    }
    Ok(text.replacen("\nfn main(", "\npub fn main(", 1))
}

/// The lab's manifest with cargo's discovery of `src/bin/` turned off and
/// the dispatcher as its one program.
fn bundled_manifest(text: &str) -> Result<String> {
    let Some(at) = text.find("[package]\n") else {
        bail!("the lab's Cargo.toml has no [package] table");
    };
    let at = at + "[package]\n".len();
    let mut out = String::with_capacity(text.len() + 128);
    out.push_str(&text[..at]);
    out.push_str("autobins = false\n");
    out.push_str(&text[at..]);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let _ = write!(
        out,
        "\n# Written by the checker: the programs of src/bin as one.\n[[bin]]\nname = \"{BUNDLE}\"\npath = \"{DISPATCHER}\"\n"
    );
    Ok(out)
}

/// A module per program, by its path, and a `main` that runs the one its
/// name selects.
fn dispatcher(names: &[String]) -> String {
    let mut out = String::from(
        "// Written by the checker: the lab's programs as one, chosen by the name it\n\
         // was started by. Each program is a module, at its own path.\n\n\
         use std::process::{ExitCode, Termination};\n\n",
    );
    for name in names {
        let _ = writeln!(
            out,
            "#[path = \"src/bin/{name}.rs\"]\nmod {};",
            module(name)
        );
    }
    out.push_str(
        "\nfn main() -> ExitCode {\n    \
         let arg0 = std::env::args_os().next().unwrap_or_default();\n    \
         let name = std::path::Path::new(&arg0).file_name().unwrap_or_default();\n    \
         match name.to_string_lossy().as_ref() {\n",
    );
    for name in names {
        let _ = writeln!(
            out,
            "        \"{name}\" => {}::main().report(),",
            module(name)
        );
    }
    let list = names.join(", ");
    let _ = write!(
        out,
        "        other => {{\n            \
         eprintln!(\"lab-programs: started as {{other:?}}; start it by one of the names {list}\");\n            \
         ExitCode::from(2)\n        }}\n    }}\n}}\n"
    );
    out
}

/// Cargo's messages with the bundle's name put back in the student's
/// terms: `could not compile `fork` (bin "lab-programs")` names a program
/// the student never wrote.
pub fn in_students_terms(messages: &str) -> String {
    messages.replace(
        &format!("(bin \"{BUNDLE}\")"),
        "(the lab's programs in src/bin/)",
    )
}

fn module(name: &str) -> String {
    name.replace('-', "_")
}

/// Puts the bundle into `dir` once per program, as hard links named for
/// each. Each name is replaced by a rename, so a program still running
/// from an earlier check keeps its own file.
pub fn install(built: &Path, dir: &Path, names: &[String]) -> Result<Vec<(String, PathBuf)>> {
    let tmp = dir.join(format!(".{BUNDLE}.tmp"));
    std::fs::copy(built, &tmp).with_context(|| format!("copying {}", built.display()))?;
    let mut installed = Vec::with_capacity(names.len());
    for name in names {
        let dest = dir.join(name);
        let link = dir.join(format!(".{name}.tmp"));
        let _ = std::fs::remove_file(&link);
        std::fs::hard_link(&tmp, &link)
            .with_context(|| format!("linking {} to {}", link.display(), tmp.display()))?;
        std::fs::rename(&link, &dest).with_context(|| format!("renaming to {}", dest.display()))?;
        installed.push((name.clone(), dest));
    }
    std::fs::remove_file(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    Ok(installed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<(PathBuf, Vec<u8>)> {
        vec![
            (
                PathBuf::from("Cargo.toml"),
                b"[package]\nname = \"fork\"\n\n[dependencies]\nlibc = \"1\"\n".to_vec(),
            ),
            (PathBuf::from("src/lib.rs"), b"pub fn f() {}\n".to_vec()),
            (
                PathBuf::from("src/bin/lost-update.rs"),
                b"//! Doc.\nuse std::process::ExitCode;\n\nfn main() -> ExitCode {\n    ExitCode::SUCCESS\n}\n"
                    .to_vec(),
            ),
            (
                PathBuf::from("src/bin/fanout.rs"),
                b"//! Doc.\nfn helper() {}\nfn main() -> ExitCode {\n    helper();\n    ExitCode::SUCCESS\n}\n"
                    .to_vec(),
            ),
        ]
    }

    fn text<'a>(files: &'a [(PathBuf, Vec<u8>)], path: &str) -> &'a str {
        let (_, bytes) = files.iter().find(|(p, _)| p == Path::new(path)).unwrap();
        std::str::from_utf8(bytes).unwrap()
    }

    #[test]
    fn programs_become_modules_of_one_dispatcher_on_the_same_lines() {
        let mut files = files();
        let names = bundle(&mut files).unwrap();
        assert_eq!(names, ["fanout", "lost-update"]);
        let program = text(&files, "src/bin/lost-update.rs");
        assert_eq!(program.lines().count(), 6);
        assert_eq!(program.lines().nth(3), Some("pub fn main() -> ExitCode {"));
        let manifest = text(&files, "Cargo.toml");
        assert!(manifest.starts_with("[package]\nautobins = false\nname = \"fork\"\n"));
        assert!(
            manifest.ends_with("[[bin]]\nname = \"lab-programs\"\npath = \"lab-programs.rs\"\n")
        );
        let dispatcher = text(&files, DISPATCHER);
        assert!(dispatcher.contains("#[path = \"src/bin/lost-update.rs\"]\nmod lost_update;"));
        assert!(dispatcher.contains("\"lost-update\" => lost_update::main().report(),"));
        assert_eq!(text(&files, "src/lib.rs"), "pub fn f() {}\n");
    }

    #[test]
    fn cargo_names_the_programs_as_the_student_knows_them() {
        assert_eq!(
            in_students_terms(
                "error: could not compile `fork` (bin \"lab-programs\") due to 6 previous errors\n"
            ),
            "error: could not compile `fork` (the lab's programs in src/bin/) due to 6 previous errors\n"
        );
    }

    #[test]
    fn a_program_without_one_main_is_an_error() {
        let mut files = files();
        files[3].1 = b"fn helper() {}\n".to_vec();
        let e = bundle(&mut files).unwrap_err();
        assert!(format!("{e:#}").contains("src/bin/fanout.rs"), "{e:#}");
    }

    #[test]
    fn a_lab_without_programs_is_left_alone() {
        let mut files = vec![(PathBuf::from("Cargo.toml"), b"[package]\n".to_vec())];
        assert!(bundle(&mut files).unwrap().is_empty());
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].1, b"[package]\n");
    }
}
