//! Fixtures: typical bugs, each kept as a small patch of a solution.
//!
//! A patch file names a file, then gives blocks of text to find (exactly
//! once) and what to put in their place:
//!
//! ```text
//! # Why this bug is typical (lines starting with # are comments).
//! --- src/lib.rs
//! <<<<<<< find
//!     old lines
//! =======
//!     new lines
//! >>>>>>> replace
//! ```
//!
//! A block that no longer matches the solution is an error, so fixtures
//! cannot rot silently when the solution changes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

#[derive(Debug, PartialEq, Eq)]
pub struct Edit {
    pub file: PathBuf,
    pub find: String,
    pub replace: String,
}

pub fn parse(text: &str) -> Result<Vec<Edit>> {
    let mut edits = Vec::new();
    let mut file: Option<PathBuf> = None;
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        if let Some(name) = line.strip_prefix("--- ") {
            file = Some(PathBuf::from(name.trim()));
        } else if line.starts_with("<<<<<<<") {
            let Some(file) = file.clone() else {
                bail!("line {}: a block before any `--- FILE` line", n + 1)
            };
            let mut find = String::new();
            let mut replace = String::new();
            let mut in_replace = false;
            loop {
                let Some((_, l)) = lines.next() else {
                    bail!("line {}: block not closed by `>>>>>>>`", n + 1)
                };
                if l.starts_with("=======") && !in_replace {
                    in_replace = true;
                } else if l.starts_with(">>>>>>>") {
                    break;
                } else if in_replace {
                    replace.push_str(l);
                    replace.push('\n');
                } else {
                    find.push_str(l);
                    find.push('\n');
                }
            }
            if !in_replace {
                bail!("line {}: block has no `=======`", n + 1);
            }
            edits.push(Edit {
                file,
                find,
                replace,
            });
        } else if !(line.starts_with('#') || line.trim().is_empty()) {
            bail!(
                "line {}: expected `--- FILE`, a block, or a # comment",
                n + 1
            );
        }
    }
    if edits.is_empty() {
        bail!("no edits");
    }
    Ok(edits)
}

/// Applies the patch at `path` to `files` (relative path, content).
pub fn apply(path: &Path, files: &mut [(PathBuf, Vec<u8>)]) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let edits = parse(&text).with_context(|| format!("in {}", path.display()))?;
    for edit in edits {
        let Some((_, bytes)) = files.iter_mut().find(|(f, _)| *f == edit.file) else {
            bail!("{}: no file {}", path.display(), edit.file.display());
        };
        let content = String::from_utf8(std::mem::take(bytes))
            .context("patching a file that is not UTF-8")?;
        let found = content.matches(&edit.find).count();
        if found != 1 {
            bail!(
                "{}: the text to find occurs {found} times in {} (it must occur once):\n{}",
                path.display(),
                edit.file.display(),
                edit.find
            );
        }
        *bytes = content.replacen(&edit.find, &edit.replace, 1).into_bytes();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_applies_a_patch() {
        let dir = std::env::temp_dir().join(format!("fixture-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let patch = dir.join("bug.patch");
        std::fs::write(
            &patch,
            "# a bug\n--- src/lib.rs\n<<<<<<< find\na\n=======\nb\n>>>>>>> replace\n",
        )
        .unwrap();
        let mut files = vec![(PathBuf::from("src/lib.rs"), b"x\na\ny\n".to_vec())];
        apply(&patch, &mut files).unwrap();
        assert_eq!(files[0].1, b"x\nb\ny\n");
        // Applying again fails: the text is gone.
        assert!(apply(&patch, &mut files).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_malformed_patches() {
        assert!(parse("<<<<<<< find\na\n=======\nb\n>>>>>>> replace\n").is_err());
        assert!(parse("--- f\n<<<<<<< find\na\n").is_err());
        assert!(parse("just text\n").is_err());
    }
}
