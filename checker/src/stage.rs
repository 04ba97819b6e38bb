//! Where a lab is built: a workspace of the checker's own under
//! `target/lab/`, holding a copy of the lab crate from the tree being
//! checked. The copy mirrors the course's layout (`labs/01-fork/...`), so
//! compiler messages and panics name the same paths the student edits.
//!
//! Only the student's files (each lab's `Lab::student`) are taken from the
//! tree; every other file (`Cargo.toml`, `src/given.rs`, the programs in
//! `src/bin/`) comes from the course's own `labs/NN-slug/`, so an edited
//! manifest, helper or program in a submission changes nothing.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::labs::Lab;

/// The course checkout the checker belongs to.
pub fn course_root() -> PathBuf {
    if let Some(root) = std::env::var_os("LAB_COURSE_ROOT") {
        return PathBuf::from(root);
    }
    // checker/ is one level below the course root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("checker has a parent")
        .to_path_buf()
}

/// Which kind of tree a [`Tree`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeKind {
    /// The course's own `labs/`: the student's working copy, whose
    /// progress is recorded.
    Labs,
    /// The course's `solutions/`.
    Solutions,
    /// Another checkout of the course: a submission, which may lack a lab.
    Checkout,
}

/// A tree of lab crates to check.
#[derive(Debug, Clone)]
pub struct Tree {
    pub kind: TreeKind,
    /// How reports name it: `labs`, `solutions`, or the path given.
    pub label: String,
    /// The directory holding the `NN-slug` crates.
    pub labs_dir: PathBuf,
    /// The layout path the staged copy uses: `labs` or `solutions`.
    pub layout: &'static str,
    /// Name of the staging workspace under `target/lab/`.
    pub key: String,
}

impl Tree {
    /// The student's working copy: the course's own `labs/`.
    pub fn labs() -> Tree {
        Tree {
            kind: TreeKind::Labs,
            label: "labs".into(),
            labs_dir: course_root().join("labs"),
            layout: "labs",
            key: "labs".into(),
        }
    }

    /// The reference solutions.
    pub fn solutions() -> Tree {
        Tree {
            kind: TreeKind::Solutions,
            label: "solutions".into(),
            labs_dir: course_root().join("solutions"),
            layout: "solutions",
            key: "solutions".into(),
        }
    }

    /// The options that name this tree to `lab check`.
    pub fn args(&self) -> Vec<std::ffi::OsString> {
        match self.kind {
            TreeKind::Labs => Vec::new(),
            TreeKind::Solutions => vec!["--solutions".into()],
            TreeKind::Checkout => {
                let dir = self.labs_dir.parent().unwrap_or(&self.labs_dir);
                vec!["--tree".into(), dir.into()]
            }
        }
    }

    /// Another checkout of the course (a student's submission).
    pub fn checkout(dir: &Path) -> Result<Tree> {
        let dir = dir
            .canonicalize()
            .with_context(|| format!("cannot open the tree {}", dir.display()))?;
        let labs_dir = dir.join("labs");
        if !labs_dir.is_dir() {
            bail!(
                "{} does not look like a checkout of the course: it has no labs/ directory",
                dir.display()
            );
        }
        let key = format!("tree-{:016x}", fnv1a(dir.to_string_lossy().as_bytes()));
        Ok(Tree {
            kind: TreeKind::Checkout,
            label: dir.display().to_string(),
            labs_dir,
            layout: "labs",
            key,
        })
    }
}

pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// A lab copied into its staging workspace, ready for cargo.
pub struct Staged {
    /// The staging workspace's root (holds Cargo.toml and Cargo.lock).
    pub root: PathBuf,
    /// The lab's crate, relative to `root`: `labs/01-fork`.
    pub member: PathBuf,
    pub target_dir: PathBuf,
    /// Whether cargo keeps incremental data: for the course's own trees,
    /// edited and checked again and again, not for a checkout (`--tree`),
    /// mostly checked once, whose first build it makes twice as costly.
    pub incremental: bool,
    /// The lab's programs, built as one (`crate::programs`).
    pub programs: Vec<String>,
}

/// Copies `lab` from `tree` into its staging workspace. `patch`, for
/// fixtures, is applied to the copy.
pub fn stage(tree: &Tree, lab: &Lab, patch: Option<&Path>) -> Result<Staged> {
    let course = course_root();
    let source = tree.labs_dir.join(lab.dir());
    if !source.is_dir() {
        bail!(
            "{} has no lab {} (looked for {})",
            tree.label,
            lab.dir(),
            source.display()
        );
    }
    let pristine = course.join("labs").join(lab.dir());
    let key = match patch {
        Some(_) => format!("{}-fixtures", tree.key),
        None => tree.key.clone(),
    };
    // A workspace per tree and lab, so that labs can be built and checked
    // at the same time; one target directory per tree, so that the
    // dependencies build once for all labs.
    let tree_dir = course.join("target").join("lab").join(key);
    let root = tree_dir.join(lab.dir());
    let member = format!("{}/{}", tree.layout, lab.dir());
    let dest = root.join(&member);
    fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;

    write_if_changed(
        &root.join("Cargo.toml"),
        workspace_manifest(&course, &member)?.as_bytes(),
    )?;
    // The course's lock file, every time: the versions are the course's,
    // and a copy taken once could outlive a change to them. (Cargo trims
    // the copy to the one lab; that costs nothing and rebuilds nothing.)
    if let Ok(bytes) = fs::read(course.join("Cargo.lock")) {
        write_if_changed(&root.join("Cargo.lock"), &bytes)?;
    }
    let mut files = lab_files(&pristine, &source, lab)?;
    if let Some(patch) = patch {
        crate::fixture::apply(patch, &mut files)?;
    }
    let programs = crate::programs::bundle(&mut files)
        .with_context(|| format!("staging lab {}", lab.dir()))?;
    sync_dir(&dest, Path::new(""), &files)?;
    for (rel, bytes) in &files {
        write_if_changed(&dest.join(rel), bytes)?;
    }
    // `LAB_TARGET_DIR` lets `grade` share one target directory per job.
    let target_dir = std::env::var_os("LAB_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tree_dir.join("target"));
    Ok(Staged {
        root,
        member: PathBuf::from(member),
        target_dir,
        incremental: !tree.key.starts_with("tree-"),
        programs,
    })
}

/// The lab's files as the checker builds them: the student's files from
/// `source`, everything else from `pristine`, the course's own copy of the
/// lab. A student file missing from `source` is an error that names it.
fn lab_files(pristine: &Path, source: &Path, lab: &Lab) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut course_files = Vec::new();
    collect_files(pristine, Path::new(""), &mut course_files)?;
    course_files.sort();
    let mut files = Vec::new();
    for rel in course_files {
        if lab.student.iter().any(|s| Path::new(s) == rel) {
            continue;
        }
        let bytes = read(&pristine.join(&rel))?;
        files.push((rel, bytes));
    }
    for s in lab.student {
        let path = source.join(s);
        let bytes = fs::read(&path).with_context(|| {
            format!(
                "reading {}, a file of lab {} that the student writes",
                path.display(),
                lab.dir()
            )
        })?;
        files.push((PathBuf::from(s), bytes));
    }
    Ok(files)
}

/// The staging workspace's manifest: one member, the course's
/// `[workspace.package]` and `[workspace.dependencies]`, and a profile of
/// its own.
pub fn workspace_manifest(course: &Path, member: &str) -> Result<String> {
    let text =
        fs::read_to_string(course.join("Cargo.toml")).context("reading the course's Cargo.toml")?;
    let mut out = format!(
        "# Written by the checker; changes are overwritten.\n[workspace]\nresolver = \"3\"\nmembers = [\"{member}\"]\n"
    );
    for section in ["[workspace.package]", "[workspace.dependencies]"] {
        for block in sections(&text, section) {
            out.push('\n');
            out.push_str(&absolute_paths(block, course));
        }
    }
    // No debug info: panics still name their file and line (those are in
    // the program itself), and a lab builds about three times faster and
    // six times smaller, which counts when grading a class.
    out.push_str("\n[profile.dev]\ndebug = false\nstrip = \"debuginfo\"\n");
    Ok(out)
}

/// `block` with every `path = "REL"` made absolute from `course`: the
/// course's own crates (`crates/lab-program`) are dependencies of the
/// labs, and the staging workspace lives elsewhere.
pub(crate) fn absolute_paths(block: &str, course: &Path) -> String {
    let mut out = String::new();
    let mut rest = block;
    while let Some(at) = rest.find("path = \"") {
        let (head, tail) = rest.split_at(at + "path = \"".len());
        out.push_str(head);
        let end = tail.find('"').unwrap_or(tail.len());
        let rel = &tail[..end];
        if Path::new(rel).is_absolute() {
            out.push_str(rel);
        } else {
            out.push_str(&course.join(rel).display().to_string());
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// The blocks of a TOML file whose header starts with `header`.
pub fn sections<'a>(text: &'a str, header: &str) -> Vec<&'a str> {
    let mut blocks = Vec::new();
    let mut start = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with('[') {
            if let Some(s) = start.take() {
                blocks.push(&text[s..offset]);
            }
            if line.starts_with(header) {
                start = Some(offset);
            }
        }
        offset += line.len();
    }
    if let Some(s) = start {
        blocks.push(&text[s..]);
    }
    blocks
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Lists the files under `dir` as paths relative to it (prefixed by `rel`),
/// leaving out a build's `target/` directory.
pub(crate) fn collect_files(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries {
        let e = e.with_context(|| format!("listing {}", dir.display()))?;
        let name = e.file_name();
        let rel = rel.join(&name);
        let ty = e.file_type()?;
        if ty.is_dir() {
            if rel == Path::new("target") {
                continue;
            }
            collect_files(&e.path(), &rel, out)?;
        } else if ty.is_file() {
            out.push(rel);
        }
    }
    Ok(())
}

/// Removes files under `dir` that are not in `files`, so a file deleted
/// from the tree disappears from the copy.
fn sync_dir(dir: &Path, rel: &Path, files: &[(PathBuf, Vec<u8>)]) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let rel = rel.join(e.file_name());
        if e.file_type()?.is_dir() {
            sync_dir(&e.path(), &rel, files)?;
        } else if !files.iter().any(|(f, _)| *f == rel) {
            fs::remove_file(e.path())?;
        }
    }
    Ok(())
}

/// Writes only when the content differs, so cargo sees unchanged files as
/// unchanged and rebuilds nothing. The new content is written aside and
/// renamed into place: two checks of one lab at once (a `watch` and a
/// `check`) never let cargo read a half-written manifest.
pub(crate) fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let aside = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    fs::write(&aside, bytes).with_context(|| format!("writing {}", aside.display()))?;
    fs::rename(&aside, path)
        .with_context(|| format!("renaming {} to {}", aside.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether this copy of the course has solutions/; a template for
    /// students has none, and the tests that compare with them say they
    /// are skipped.
    fn has_solutions(test: &str) -> bool {
        let there = course_root().join("solutions").is_dir();
        if !there {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "skipped {test}: it compares with the reference solutions, and this copy of the course has no solutions/"
            );
        }
        there
    }

    #[test]
    fn finds_toml_sections() {
        let text = "[workspace]\nmembers = []\n\n[workspace.dependencies]\na = \"1\"\n\n[profile.dev]\nopt-level = 1\n[profile.release]\nlto = true\n";
        assert_eq!(
            sections(text, "[workspace.dependencies]"),
            vec!["[workspace.dependencies]\na = \"1\"\n\n"]
        );
        assert_eq!(sections(text, "[profile.").len(), 2);
    }

    #[test]
    fn course_crates_are_found_from_the_staging_workspace() {
        let block = "[workspace.dependencies]\nanyhow = \"1\"\nlab-program = { path = \"crates/lab-program\" }\n";
        assert_eq!(
            absolute_paths(block, Path::new("/course")),
            "[workspace.dependencies]\nanyhow = \"1\"\nlab-program = { path = \"/course/crates/lab-program\" }\n"
        );
    }

    /// Each file lives once: solutions/ holds only the files the student
    /// writes (`Lab::student`), and none of them is a copy of the starter's.
    #[test]
    fn solutions_hold_only_student_files_and_no_copy_of_labs() {
        let root = course_root();
        if !has_solutions("solutions_hold_only_student_files_and_no_copy_of_labs") {
            return;
        }
        let labs = crate::labs::ALL;
        for e in fs::read_dir(root.join("solutions")).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "target" {
                continue;
            }
            let lab = labs.iter().find(|lab| lab.dir() == name);
            assert!(
                lab.is_some(),
                "solutions/{name} is not a lab's directory: solutions/ holds the files students write, lab by lab"
            );
            let lab = lab.unwrap();
            let mut files = Vec::new();
            collect_files(&e.path(), Path::new(""), &mut files).unwrap();
            for rel in files {
                assert!(
                    lab.student.iter().any(|s| Path::new(s) == rel),
                    "solutions/{name}/{} is not a file the student writes (Lab::student); given code lives in labs/{name}/ only",
                    rel.display()
                );
                let starter = root.join("labs").join(&name).join(&rel);
                assert_ne!(
                    fs::read(&starter).ok(),
                    Some(read(&e.path().join(&rel)).unwrap()),
                    "solutions/{name}/{} is a copy of labs/{name}/{}: it belongs in one place",
                    rel.display(),
                    rel.display()
                );
            }
        }
        for lab in labs {
            for s in lab.student {
                let path = root.join("solutions").join(lab.dir()).join(s);
                assert!(path.is_file(), "{} is missing", path.display());
                let starter = root.join("labs").join(lab.dir()).join(s);
                assert!(starter.is_file(), "{} is missing", starter.display());
            }
        }
    }
}
