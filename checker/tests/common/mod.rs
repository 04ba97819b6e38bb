//! Shared by the integration tests: the `lab` command with a private
//! progress file, and throw-away checkouts of the course.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn course_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `lab`, without colours, recording progress in a file of the test's own.
pub fn lab(test: &str) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("lab").unwrap();
    let progress = std::env::temp_dir().join(format!(
        "lab-test-progress-{}-{test}.json",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&progress);
    cmd.env("NO_COLOR", "1")
        .env("LAB_PROGRESS", progress)
        .env_remove("CLICOLOR_FORCE");
    cmd
}

/// A checkout of the course holding lab 01 with `lib_rs` as its library.
/// It lives under target/ at a fixed place, so builds are incremental.
pub fn tree_with_lab01(name: &str, lib_rs: &str) -> PathBuf {
    let root = course_root().join("target/test-trees").join(name);
    let lab = root.join("labs/01-fork");
    std::fs::create_dir_all(lab.join("src")).unwrap();
    let course_lab = course_root().join("labs/01-fork");
    for file in ["Cargo.toml", "src/given.rs"] {
        std::fs::copy(course_lab.join(file), lab.join(file)).unwrap();
    }
    std::fs::write(lab.join("src/lib.rs"), lib_rs).unwrap();
    root
}

/// The solution's library of lab 01, with `find` replaced by `replace`.
pub fn solution_lib_with(find: &str, replace: &str) -> String {
    let lib = std::fs::read_to_string(course_root().join("solutions/01-fork/src/lib.rs")).unwrap();
    assert_eq!(
        lib.matches(find).count(),
        1,
        "the test's anchor text must occur once: {find}"
    );
    lib.replacen(find, replace, 1)
}

/// Pids of live processes whose program lies under `dir`.
pub fn processes_under(dir: &Path) -> Vec<i32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(exe) = std::fs::read_link(e.path().join("exe")) {
            if exe.starts_with(dir) {
                found.push(pid);
            }
        }
    }
    found
}

/// Whether a fork bomb would meet a hard limit here: RLIMIT_NPROC for an
/// ordinary user, a writable pids cgroup for root (see checker/src/cgroup.rs).
pub fn fork_bombs_are_capped() -> bool {
    if nix::unistd::getuid().as_raw() != 0 {
        return true;
    }
    let table = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    table.lines().any(|line| {
        let parts: Vec<&str> = line.splitn(3, ':').collect();
        let rel = parts
            .get(2)
            .map(|p| p.trim_start_matches('/'))
            .unwrap_or("");
        let dir = match parts.get(1) {
            Some(c) if c.split(',').any(|c| c == "pids") => {
                Path::new("/sys/fs/cgroup/pids").join(rel)
            }
            Some(&"") => {
                let dir = Path::new("/sys/fs/cgroup").join(rel);
                let enabled =
                    std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
                if !enabled.split_whitespace().any(|c| c == "pids") {
                    return false;
                }
                dir
            }
            _ => return false,
        };
        nix::unistd::access(&dir, nix::unistd::AccessFlags::W_OK).is_ok()
    })
}

/// Says on the terminal that a test was skipped, and why. (Written to
/// stderr directly: the test harness would hide a `println!` of a test
/// that passes.)
pub fn skip(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped {test}: {why}");
}

/// Whether this copy of the course has its reference solutions; if not (a
/// template for students, written by `cargo lab template`), says that
/// `test` is skipped.
pub fn has_solutions(test: &str) -> bool {
    let there = course_root().join("solutions").is_dir();
    if !there {
        skip(
            test,
            "it needs the reference solutions, and this copy of the course has no solutions/",
        );
    }
    there
}

/// A checkout holding the untouched starters, as committed (`labs/` at
/// HEAD): the tests that need starters take them from there, because the
/// working copy's `labs/` holds whatever the student wrote. None, and the
/// test says it is skipped, where there is no commit to take them from.
pub fn starters(test: &str) -> Option<PathBuf> {
    use std::sync::OnceLock;
    static STARTERS: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = STARTERS.get_or_init(|| {
        let root = course_root();
        // At a fixed place, so that the checker's builds of it are
        // incremental from one run to the next.
        let dir = root.join("target/test-trees/starters");
        let fresh = root.join(format!("target/test-trees/starters-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&fresh);
        std::fs::create_dir_all(&fresh).map_err(|e| e.to_string())?;
        let archive = std::process::Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(["archive", "--format=tar", "HEAD", "labs"])
            .output()
            .map_err(|e| format!("git cannot run ({e})"))?;
        if !archive.status.success() {
            return Err(format!(
                "there is no commit to take the untouched starters from ({})",
                String::from_utf8_lossy(&archive.stderr).trim()
            ));
        }
        let mut tar = std::process::Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(&fresh)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("tar cannot run ({e})"))?;
        use std::io::Write;
        tar.stdin
            .take()
            .unwrap()
            .write_all(&archive.stdout)
            .map_err(|e| e.to_string())?;
        if !tar.wait().map_err(|e| e.to_string())?.success() {
            return Err("tar could not unpack the committed labs/".into());
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&fresh, &dir).map_err(|e| e.to_string())?;
        Ok(dir)
    });
    match found {
        Ok(dir) => Some(dir.clone()),
        Err(why) => {
            skip(test, &format!("it needs the untouched starters, and {why}"));
            None
        }
    }
}

/// A regular expression that matches `path` literally, for insta's filters.
pub fn literal(path: &Path) -> String {
    path.display()
        .to_string()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '/' || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}
