//! Target directories: the dependencies compiled once for all of them, and
//! one directory shared safely by several staged trees.
//!
//! Every tree checked (`--tree DIR`) and every grading slot has a target
//! directory of its own, and the labs' dependencies (anyhow, libc, nix, in
//! the features of each lab) take most of a first build. They are compiled
//! once, into `target/lab/deps-KEY/`, and a target directory that has never
//! built anything starts as a copy of that set. KEY hashes everything that
//! decides what cargo builds for them (the course's manifest and lock file,
//! each lab's `[dependencies]`, the compiler's version), so a change to any
//! of them prebuilds a new set; cargo's own fingerprints still decide, in
//! every copy, what is fresh.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};

use crate::labs;
use crate::stage::{self, Staged, course_root};

/// Fills `target_dir`, if it has never built anything, with the prebuilt
/// dependencies. Called with the target directory locked. Not having them
/// is no error: cargo then compiles them, as it always did.
pub fn seed(target_dir: &Path) {
    let debug = target_dir.join("debug");
    if debug.exists() {
        return;
    }
    let copied = prebuilt().and_then(|set| {
        // Copied aside, then renamed: an interrupted copy leaves no
        // half-filled `debug/`.
        let aside = target_dir.join(".debug.seeding");
        let _ = fs::remove_dir_all(&aside);
        copy_tree(&set, &aside)?;
        fs::rename(&aside, &debug).with_context(|| format!("renaming to {}", debug.display()))
    });
    if let Err(e) = copied {
        eprintln!(
            "warning: the labs' dependencies could not be prebuilt ({e:#}); \
             {} compiles its own",
            target_dir.display()
        );
    }
}

/// `target/lab/deps-KEY/target/debug`, built first if it is not there.
fn prebuilt() -> Result<PathBuf> {
    let course = course_root();
    let mut keyed = stage::workspace_manifest(&course, "deps")?.into_bytes();
    keyed.extend(fs::read(course.join("Cargo.lock")).unwrap_or_default());
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = Command::new(&rustc)
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    keyed.extend(version.stdout);
    let mut manifests = Vec::new();
    for lab in labs::ALL {
        let path = course.join("labs").join(lab.dir()).join("Cargo.toml");
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let deps = stage::sections(&text, "[dependencies]").concat();
        keyed.extend(deps.as_bytes());
        manifests.push((lab.dir(), deps));
    }
    let lab_dir = course.join("target").join("lab");
    let dir = lab_dir.join(format!("deps-{:016x}", stage::fnv1a(&keyed)));
    let set = dir.join("target").join("debug");
    let built = dir.join("built");
    if built.exists() {
        return Ok(set);
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
        // Another checker built it while this one waited.
        return Ok(set);
    }
    // One workspace per lab, as the labs are staged: cargo unifies the
    // features of a workspace's members, and each lab's nix must be built
    // with the lab's own features. The package is an empty library that
    // depends on what the lab depends on.
    for (name, deps) in manifests {
        let root = dir.join(&name);
        fs::create_dir_all(root.join("deps"))
            .with_context(|| format!("creating {}", root.display()))?;
        fs::write(
            root.join("Cargo.toml"),
            stage::workspace_manifest(&course, "deps")?,
        )?;
        if let Ok(lock) = fs::read(course.join("Cargo.lock")) {
            fs::write(root.join("Cargo.lock"), lock)?;
        }
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
                "building the dependencies of lab {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    fs::write(&built, "")?;
    Ok(set)
}

/// `cp -a`: cargo judges freshness by modification times, which a copy
/// must keep. (`--reflink=auto` shares the blocks where the file system
/// can.)
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let status = Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(from)
        .arg(to)
        .stdin(Stdio::null())
        .status()
        .context("running cp")?;
    if !status.success() {
        bail!(
            "cp -a {} {} failed ({status})",
            from.display(),
            to.display()
        );
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
