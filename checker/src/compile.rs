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
/// still running from an earlier check keeps its own file.
fn copy_out(staged: &Staged, bins: Bins, release: bool) -> Result<Bins> {
    let dir = staged
        .root
        .join(if release { "bin-release" } else { "bin" });
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut copied = Bins::new();
    for (name, built) in bins {
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
    let mut child = Command::new(&cargo)
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
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
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
        Ok(Built::Failed(rendered))
    }
}
