//! `cargo lab dev`: the reference solutions as a workspace of their own,
//! for clippy, rustfmt and editors.
//!
//! `solutions/NN-topic/` holds only the files the student writes; the
//! manifest, `src/given.rs` and the programs live once, in
//! `labs/NN-topic/`. This writes `target/solutions/`, a workspace with one
//! crate per lab: its `Cargo.toml` a copy of the course's, every source
//! file a hard link, to `solutions/` for the student's files and to `labs/`
//! for the given ones (a copy where the file system refuses the link).
//! Not symbolic links: rustfmt follows one and looks for `mod given;`
//! beside the file it points at. An edit saved in place through the
//! workspace lands in the file it came from; an editor that saves by
//! replacing the file, or a `git checkout`, leaves the workspace behind
//! until `cargo lab dev` runs again.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::Verdict;
use crate::labs::{ALL, Lab};
use crate::stage::{self, course_root};

/// Where the workspace goes, from the course's root.
pub const DIR: &str = "target/solutions";

pub fn run() -> Result<Verdict> {
    let course = course_root();
    if !course.join("solutions").is_dir() {
        bail!(
            "`cargo lab dev` builds a workspace of the reference solutions, and this copy of the course has no solutions/ directory (a copy for students, written by `cargo lab template`, leaves them out)"
        );
    }
    let root = write(&course)?;
    eprintln!(
        "wrote {}: the reference solutions as one workspace (for clippy, rustfmt and an editor; edits land in solutions/ and labs/)",
        root.display()
    );
    Ok(Verdict::Passed)
}

/// Writes the workspace under `course` and returns its root.
pub fn write(course: &Path) -> Result<PathBuf> {
    let root = course.join(DIR);
    fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let members: Vec<String> = ALL.iter().map(|lab| format!("\"{}\"", lab.dir())).collect();
    stage::write_if_changed(
        &root.join("Cargo.toml"),
        manifest(course, &members.join(", "))?.as_bytes(),
    )?;
    if let Ok(bytes) = fs::read(course.join("Cargo.lock")) {
        stage::write_if_changed(&root.join("Cargo.lock"), &bytes)?;
    }
    for lab in ALL {
        write_lab(course, &root, lab)?;
    }
    Ok(root)
}

fn manifest(course: &Path, members: &str) -> Result<String> {
    let text =
        fs::read_to_string(course.join("Cargo.toml")).context("reading the course's Cargo.toml")?;
    let mut out = format!(
        "# Written by `cargo lab dev`; changes are overwritten.\n[workspace]\nresolver = \"3\"\nmembers = [{members}]\n"
    );
    for section in ["[workspace.package]", "[workspace.dependencies]"] {
        for block in stage::sections(&text, section) {
            out.push('\n');
            out.push_str(&stage::absolute_paths(block, course));
        }
    }
    Ok(out)
}

/// One lab: the manifest copied, every other file linked to where it lives.
fn write_lab(course: &Path, root: &Path, lab: &Lab) -> Result<()> {
    let given = course.join("labs").join(lab.dir());
    let solution = course.join("solutions").join(lab.dir());
    let dest = root.join(lab.dir());
    let mut files = Vec::new();
    stage::collect_files(&given, Path::new(""), &mut files)?;
    // A file no longer in the lab leaves the workspace too.
    let mut there = Vec::new();
    stage::collect_files(&dest, Path::new(""), &mut there)?;
    for rel in there.iter().filter(|rel| !files.contains(rel)) {
        let path = dest.join(rel);
        fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    for rel in files {
        let to = dest.join(&rel);
        if rel == Path::new("Cargo.toml") {
            let bytes = fs::read(given.join(&rel))
                .with_context(|| format!("reading {}", given.join(&rel).display()))?;
            stage::write_if_changed(&to, &bytes)?;
            continue;
        }
        let from = if lab.student.iter().any(|s| Path::new(s) == rel) {
            solution.join(&rel)
        } else {
            given.join(&rel)
        };
        if !from.is_file() {
            bail!(
                "{} is missing: every file the student writes has a reference in solutions/",
                from.display()
            );
        }
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        link(&from, &to)?;
    }
    Ok(())
}

/// Makes `to` the same file as `from`: a hard link, or a copy where the
/// two are on different file systems. Kept when it is already that file,
/// so cargo sees nothing new.
fn link(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let source = fs::metadata(from).with_context(|| format!("reading {}", from.display()))?;
    if let Ok(existing) = fs::symlink_metadata(to) {
        if existing.dev() == source.dev() && existing.ino() == source.ino() {
            return Ok(());
        }
        fs::remove_file(to).with_context(|| format!("removing {}", to.display()))?;
    }
    if fs::hard_link(from, to).is_err() {
        fs::copy(from, to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}
