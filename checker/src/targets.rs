//! Target directories: the dependencies compiled once for all of them, and
//! one directory shared safely by several staged trees.
//!
//! Every tree checked (`--tree DIR`), every kind of staging (`labs`,
//! `solutions`, fixtures) and every grading slot has a target directory of
//! its own, and a lab's dependencies (anyhow, libc, nix with the lab's
//! features) took most of its first build in each. They are compiled once,
//! lab by lab as labs are first built, into `target/lab/deps-KEY/`, and
//! copied from there into a target directory before it first builds the
//! lab. KEY hashes what decides how cargo builds them (the course's
//! manifest and lock file, the compiler's version), and a lab's set is
//! named by its `[dependencies]` as well, so a change to any of them
//! builds a new set; cargo's own fingerprints still decide, in every
//! target directory, what is fresh.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};

use crate::stage::{self, Staged, course_root};

/// Copies `lab`'s prebuilt dependencies into `target_dir` unless it has
/// had them already. Called with the target directory locked. Not having
/// them is no error: cargo then compiles them, as it always did.
pub fn seed(target_dir: &Path, lab: &str) {
    let seeded = prebuilt(lab).and_then(|(set, name)| {
        let mark = target_dir.join(".lab-seeded").join(&name);
        if mark.exists() {
            return Ok(());
        }
        copy_missing(&set, &target_dir.join("debug"))?;
        fs::create_dir_all(mark.parent().expect("a parent"))?;
        fs::write(&mark, "").with_context(|| format!("writing {}", mark.display()))
    });
    if let Err(e) = seeded {
        eprintln!(
            "warning: the dependencies of lab {lab} could not be prebuilt ({e:#}); \
             {} compiles its own",
            target_dir.display()
        );
    }
}

/// The prebuilt set (`target/lab/deps-KEY/target/debug`), with `lab`'s
/// dependencies built into it first if they are not, and the name of the
/// lab's part of it.
fn prebuilt(lab: &str) -> Result<(PathBuf, String)> {
    let course = course_root();
    let manifest = stage::workspace_manifest(&course, "deps")?;
    let lock = fs::read(course.join("Cargo.lock")).unwrap_or_default();
    let mut keyed = manifest.clone().into_bytes();
    keyed.extend(&lock);
    keyed.extend(compiler_version()?.as_bytes());
    let path = course.join("labs").join(lab).join("Cargo.toml");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let deps = stage::sections(&text, "[dependencies]").concat();

    let lab_dir = course.join("target").join("lab");
    let dir = lab_dir.join(format!("deps-{:016x}", stage::fnv1a(&keyed)));
    let set = dir.join("target").join("debug");
    let name = format!("{lab}-{:016x}", stage::fnv1a(deps.as_bytes()));
    let built = dir.join(format!("{name}.built"));
    if built.exists() {
        return Ok((set, name));
    }
    fs::create_dir_all(&lab_dir).with_context(|| format!("creating {}", lab_dir.display()))?;
    let lock_path = lab_dir.join("deps.lock");
    let lock_file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("locking {}", lock_path.display()))?;
    if built.exists() {
        // Another checker built them while this one waited.
        return Ok((set, name));
    }
    // A workspace of its own, as the lab is staged: cargo unifies the
    // features of a workspace's members, and nix must be built with the
    // lab's own. Its package is an empty library that depends on what the
    // lab depends on.
    let root = dir.join(lab);
    fs::create_dir_all(root.join("deps"))
        .with_context(|| format!("creating {}", root.display()))?;
    fs::write(root.join("Cargo.toml"), &manifest)?;
    fs::write(root.join("Cargo.lock"), &lock)?;
    fs::write(
        root.join("deps/Cargo.toml"),
        format!(
            "[package]\nname = \"lab-deps\"\nversion = \"0.0.0\"\nedition.workspace = true\npublish = false\n\n[lib]\npath = \"lib.rs\"\n\n{deps}"
        ),
    )?;
    fs::write(root.join("deps/lib.rs"), "")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "--lib", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(dir.join("target"))
        .current_dir(&root)
        // As in compile.rs: nothing of an outer cargo leaks in.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("RUSTC_WRAPPER")
        .stdin(Stdio::null())
        .output()
        .context("running cargo build")?;
    if !out.status.success() {
        bail!(
            "cargo build of {}: {}",
            root.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    fs::write(&built, "").with_context(|| format!("writing {}", built.display()))?;
    Ok((set, name))
}

/// `rustc -vV`, once per checker.
fn compiler_version() -> Result<String> {
    static VERSION: OnceLock<String> = OnceLock::new();
    if let Some(v) = VERSION.get() {
        return Ok(v.clone());
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(&rustc)
        .arg("-vV")
        .stdin(Stdio::null())
        .output()
        .context("running rustc -vV")?;
    if !out.status.success() {
        bail!("rustc -vV failed ({})", out.status);
    }
    Ok(VERSION
        .get_or_init(|| String::from_utf8_lossy(&out.stdout).into_owned())
        .clone())
}

/// Copies every file under `from` that `to` lacks, keeping its
/// modification time (cargo judges freshness by them). Each file is
/// written aside and renamed into place, so an interrupted copy leaves
/// whole files only; a unit whose files are not all there is one cargo
/// builds again. Files `to` has already are left alone.
fn copy_missing(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for e in fs::read_dir(from).with_context(|| format!("listing {}", from.display()))? {
        let e = e?;
        let (src, dest) = (e.path(), to.join(e.file_name()));
        let ty = e.file_type()?;
        if ty.is_dir() {
            copy_missing(&src, &dest)?;
        } else if ty.is_file() && fs::symlink_metadata(&dest).is_err() {
            let aside = to.join(format!(".{}.seeding", e.file_name().to_string_lossy()));
            fs::copy(&src, &aside).with_context(|| format!("copying {}", src.display()))?;
            let mtime = e.metadata()?.modified()?;
            fs::File::options()
                .write(true)
                .open(&aside)
                .and_then(|f| f.set_modified(mtime))
                .with_context(|| format!("setting the time of {}", aside.display()))?;
            fs::rename(&aside, &dest).with_context(|| format!("renaming to {}", dest.display()))?;
        }
    }
    Ok(())
}

/// Makes cargo rebuild a lab whose target directory last built it from
/// another staged tree (grading slots share one target directory among
/// many submissions). Cargo decides that a lab is fresh when its files are
/// older than what it built last; a submission staged earlier (graded
/// again, say) has older files than the programs another submission left
/// there, and would be graded with that submission's programs. Called with
/// the target directory locked.
pub fn claim(staged: &Staged, target_dir: &Path) -> Result<()> {
    let marks = target_dir.join(".lab-staged");
    fs::create_dir_all(&marks).with_context(|| format!("creating {}", marks.display()))?;
    let member = staged.member.to_string_lossy().replace('/', "+");
    let mark = marks.join(member);
    let root = staged.root.to_string_lossy().into_owned();
    if fs::read_to_string(&mark).ok().as_deref() == Some(root.as_str()) {
        return Ok(());
    }
    touch_all(&staged.root.join(&staged.member))?;
    fs::write(&mark, root).with_context(|| format!("writing {}", mark.display()))
}

/// Sets the modification time of every file under `dir` to now.
fn touch_all(dir: &Path) -> Result<()> {
    let now = std::time::SystemTime::now();
    for e in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let e = e?;
        if e.file_type()?.is_dir() {
            touch_all(&e.path())?;
        } else {
            fs::File::options()
                .write(true)
                .open(e.path())
                .and_then(|f| f.set_modified(now))
                .with_context(|| format!("touching {}", e.path().display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lab-targets-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn mtime(path: &Path) -> SystemTime {
        fs::metadata(path).unwrap().modified().unwrap()
    }

    fn set_mtime(path: &Path, t: SystemTime) {
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[test]
    fn another_tree_is_touched_the_same_tree_is_not() {
        let dir = scratch("claim");
        let long_ago = SystemTime::now() - Duration::from_secs(3600);
        let staged = |tree: &str| {
            let root = dir.join(tree);
            let file = root.join("labs/01-fork/src/lib.rs");
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            fs::write(&file, "").unwrap();
            set_mtime(&file, long_ago);
            let staged = Staged {
                root,
                member: PathBuf::from("labs/01-fork"),
                target_dir: dir.join("target"),
                incremental: false,
                programs: Vec::new(),
            };
            (staged, file)
        };
        let (a, a_file) = staged("a");
        let (b, b_file) = staged("b");
        claim(&a, &a.target_dir).unwrap();
        assert!(mtime(&a_file) > long_ago, "first build here: touched");
        set_mtime(&a_file, long_ago);
        claim(&a, &a.target_dir).unwrap();
        assert_eq!(mtime(&a_file), long_ago, "built from a last: left alone");
        claim(&b, &b.target_dir).unwrap();
        assert!(mtime(&b_file) > long_ago, "b after a: touched");
        claim(&a, &a.target_dir).unwrap();
        assert!(mtime(&a_file) > long_ago, "a after b: touched");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn copies_what_is_missing_with_its_time_and_nothing_else() {
        let dir = scratch("copy");
        let (from, to) = (dir.join("from"), dir.join("to"));
        fs::create_dir_all(from.join("deps")).unwrap();
        fs::create_dir_all(to.join("deps")).unwrap();
        let long_ago = SystemTime::now() - Duration::from_secs(3600);
        for name in ["deps/libnix.rlib", "deps/libfork.rlib"] {
            fs::write(from.join(name), "prebuilt").unwrap();
            set_mtime(&from.join(name), long_ago);
        }
        fs::write(to.join("deps/libfork.rlib"), "its own").unwrap();
        copy_missing(&from, &to).unwrap();
        assert_eq!(
            fs::read_to_string(to.join("deps/libnix.rlib")).unwrap(),
            "prebuilt"
        );
        assert_eq!(mtime(&to.join("deps/libnix.rlib")), long_ago);
        assert_eq!(
            fs::read_to_string(to.join("deps/libfork.rlib")).unwrap(),
            "its own"
        );
        assert_eq!(
            fs::read_dir(to.join("deps")).unwrap().count(),
            2,
            "no file left aside"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
