//! Building a staged lab with cargo, in a target directory of its own (a
//! nested cargo must not share the outer one's lock), and finding the
//! programs it produced.

use std::io::Read;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};
use serde_json::Value;

use crate::scenario::Bins;
use crate::stage::Staged;

pub enum Built {
    Ok(Bins),
    /// The compiler's messages, rendered as cargo renders them.
    Failed(String),
}

/// `cargo build --bins` in the staging workspace, then a copy of the
/// programs into the workspace's own `bin/`. `color` keeps the compiler's
/// colours in the rendered messages.
///
/// Several workspaces share a target directory, where cargo leaves each
/// program at `debug/NAME`: two labs, or two fixtures of one lab, may have
/// programs of the same name. A lock on the target directory, held from the
/// build to the copy, keeps one build from replacing another's programs
/// before they are copied.
pub fn build(staged: &Staged, color: bool) -> Result<Built> {
    build_profile(staged, color, false)
}

/// As [`build`], with optimisations (`--release`), for programs that
/// measure (`cargo lab bench`). The programs are copied to `ROOT/bin-release/`.
pub fn build_release(staged: &Staged, color: bool) -> Result<Built> {
    build_profile(staged, color, true)
}

fn build_profile(staged: &Staged, color: bool, release: bool) -> Result<Built> {
    std::fs::create_dir_all(&staged.target_dir)
        .with_context(|| format!("creating {}", staged.target_dir.display()))?;
    let lock_path = staged.target_dir.join(".lab-build.lock");
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("locking {}", lock_path.display()))?;
    let lab = staged.member.file_name().unwrap_or_default();
    crate::targets::seed(&staged.target_dir, &lab.to_string_lossy());
    crate::targets::claim(staged, &staged.target_dir)?;
    match cargo_build(staged, color, release)? {
        Built::Ok(bins) => Ok(Built::Ok(copy_out(staged, bins, release)?)),
        failed => Ok(failed),
    }
}

/// Copies the programs to `ROOT/bin/`, each by a rename so that a program
/// still running from an earlier check keeps its own file. The lab's
/// programs, built as one, are installed under each of their names.
fn copy_out(staged: &Staged, bins: Bins, release: bool) -> Result<Bins> {
    let dir = staged
        .root
        .join(if release { "bin-release" } else { "bin" });
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut copied = Bins::new();
    for (name, built) in bins {
        if name == crate::programs::BUNDLE {
            copied.extend(crate::programs::install(&built, &dir, &staged.programs)?);
            continue;
        }
        let dest = dir.join(&name);
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::copy(&built, &tmp).with_context(|| format!("copying {}", built.display()))?;
        std::fs::rename(&tmp, &dest).with_context(|| format!("renaming to {}", dest.display()))?;
        copied.insert(name, dest);
    }
    Ok(copied)
}

fn cargo_build(staged: &Staged, color: bool, release: bool) -> Result<Built> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let format = if color {
        "json-diagnostic-rendered-ansi"
    } else {
        "json"
    };
    let bar = progress_width();
    let mut command = Command::new(&cargo);
    match bar {
        // Cargo draws its bar despite --quiet when asked to "always"; the
        // frames come through stderr and go on to ours (see `split_stderr`).
        Some(width) => command
            .env("CARGO_TERM_PROGRESS_WHEN", "always")
            .env("CARGO_TERM_PROGRESS_WIDTH", width.to_string()),
        None => command
            .env_remove("CARGO_TERM_PROGRESS_WHEN")
            .env_remove("CARGO_TERM_PROGRESS_WIDTH"),
    };
    let mut child = command
        .args(["build", "--quiet", "--bins", "--message-format", format])
        .args(release.then_some("--release"))
        .arg("--manifest-path")
        .arg(staged.root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&staged.target_dir)
        .current_dir(&staged.root)
        // Whatever the outer cargo set must not leak into the inner build.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("RUSTC_WRAPPER")
        .envs((!staged.incremental).then_some(("CARGO_INCREMENTAL", "0")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running cargo build")?;
    let mut stderr = child.stderr.take().expect("piped");
    let err_reader = std::thread::Builder::new()
        .name("cargo stderr".into())
        .spawn(move || {
            let mut bytes = Vec::new();
            match bar {
                Some(_) => split_stderr(&mut stderr, &mut std::io::stderr(), &mut bytes),
                None => {
                    let _ = stderr.read_to_end(&mut bytes);
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .context("starting a thread to read cargo's messages")?;
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut stdout)
        .context("reading cargo's output")?;
    let status = child.wait().context("waiting for cargo build")?;
    let stderr = err_reader.join().unwrap_or_default();

    let mut bins = Bins::new();
    let mut rendered = String::new();
    for line in stdout.lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        match msg["reason"].as_str() {
            Some("compiler-artifact") => {
                let is_bin = msg["target"]["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|v| v == "bin"));
                if let (true, Some(exe), Some(name)) = (
                    is_bin,
                    msg["executable"].as_str(),
                    msg["target"]["name"].as_str(),
                ) {
                    bins.insert(name.to_string(), exe.into());
                }
            }
            Some("compiler-message") => {
                let level = msg["message"]["level"].as_str().unwrap_or("");
                if level == "error" || level == "warning" {
                    if let Some(text) = msg["message"]["rendered"].as_str() {
                        rendered.push_str(text);
                    }
                }
            }
            _ => {}
        }
    }
    if status.success() {
        Ok(Built::Ok(bins))
    } else {
        if !stderr.trim().is_empty() {
            rendered.push_str(&stderr);
        }
        Ok(Built::Failed(crate::programs::in_students_terms(&rendered)))
    }
}

/// The width for cargo's progress bar while a lab builds: the terminal's,
/// when stderr is one. None when stderr is not a terminal, `TERM=dumb`, or
/// `LAB_NO_PROGRESS` is set (checkers running side by side, whose bars
/// would draw over each other).
fn progress_width() -> Option<u16> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal()
        || std::env::var_os("TERM").is_some_and(|t| t == "dumb")
        || std::env::var_os("LAB_NO_PROGRESS").is_some()
    {
        return None;
    }
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one struct winsize, which `size` is.
    let ok = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col >= 40).then_some(size.ws_col - 1)
}

/// Reads cargo's stderr: the progress bar's frames (text ended by `\r`,
/// the way cargo redraws a line, or by the `ESC [K` that clears it) are passed on to `terminal` as they come;
/// whole lines (ended by `\n`: errors cargo reports outside the JSON
/// messages) are kept in `kept` for the report.
fn split_stderr(from: &mut impl Read, terminal: &mut impl std::io::Write, kept: &mut Vec<u8>) {
    let mut pending = Vec::new();
    let mut drew = false;
    let mut buf = [0u8; 4096];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        for &b in &buf[..n] {
            pending.push(b);
            // `\x1b[K` is how cargo clears its bar at the end.
            let frame_ends = b == b'\r' || pending.ends_with(b"\x1b[K");
            match b {
                _ if frame_ends => {
                    drew = true;
                    let _ = terminal.write_all(&pending);
                    let _ = terminal.flush();
                    pending.clear();
                }
                b'\n' => kept.append(&mut pending),
                _ => {}
            }
        }
    }
    kept.append(&mut pending);
    // Cargo clears its bar only on a terminal of its own; here it writes
    // into a pipe, so the last frame is cleared by us.
    if drew {
        let _ = terminal.write_all(b"\r\x1b[K");
        let _ = terminal.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::split_stderr;

    #[test]
    fn progress_frames_go_to_the_terminal_and_lines_to_the_report() {
        let cargo =
            b"\r[==>   ] 1/7: libc\r[=====>] 2/7: nix\r\x1b[Kerror: failed to parse\nmore\n";
        let (mut terminal, mut kept) = (Vec::new(), Vec::new());
        split_stderr(&mut &cargo[..], &mut terminal, &mut kept);
        assert_eq!(
            String::from_utf8(terminal).unwrap(),
            "\r[==>   ] 1/7: libc\r[=====>] 2/7: nix\r\x1b[K\r\x1b[K"
        );
        assert_eq!(
            String::from_utf8(kept).unwrap(),
            "error: failed to parse\nmore\n"
        );
    }
}
