//! A hard cap on the number of processes a scenario may create, with the
//! kernel's pids controller, where the checker may create control groups
//! (as root, or where a cgroup was delegated to the user).
//!
//! Why: RLIMIT_NPROC stops a fork bomb for ordinary users, but the kernel
//! exempts root from it. Without a cap, a fork bomb run as root can use up
//! every pid of the machine before the monitor sees it.

use std::ffi::CString;
use std::path::{Path, PathBuf};

/// A control group of the scenario's own, removed on drop.
pub struct PidsCgroup {
    dir: PathBuf,
    /// `DIR/cgroup.procs`, ready for `pre_exec` (no allocation after fork).
    procs: CString,
}

impl PidsCgroup {
    /// Creates `NAME` under the checker's own pids cgroup, limited to `max`
    /// tasks. `None` when the machine does not let us.
    pub fn create(name: &str, max: usize) -> Option<PidsCgroup> {
        let base = own_pids_cgroup()?;
        let dir = base.join(name);
        std::fs::create_dir(&dir).ok()?;
        let cgroup = PidsCgroup {
            procs: CString::new(dir.join("cgroup.procs").to_string_lossy().as_bytes()).ok()?,
            dir,
        };
        std::fs::write(cgroup.dir.join("pids.max"), max.to_string()).ok()?;
        Some(cgroup)
    }

    /// The path a new process writes `0` to, to move itself in.
    pub fn procs_path(&self) -> &CString {
        &self.procs
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        // Empty once every process is reaped; retry briefly meanwhile.
        for _ in 0..200 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// Moves the calling process into the cgroup whose `cgroup.procs` is
/// `procs`. Async-signal-safe: for `pre_exec`.
pub fn join(procs: &CString) -> std::io::Result<()> {
    // SAFETY: open, write and close on a NUL-terminated path and a static
    // buffer; nothing is allocated.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = libc::write(fd, b"0".as_ptr().cast(), 1);
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if n != 1 {
            return Err(err);
        }
    }
    Ok(())
}

/// The directory of this process's pids cgroup, if it is writable.
fn own_pids_cgroup() -> Option<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in table.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        // cgroup v1: a hierarchy of its own for pids.
        if controllers.split(',').any(|c| c == "pids") {
            let dir = Path::new("/sys/fs/cgroup/pids").join(rel);
            if writable(&dir) {
                return Some(dir);
            }
        }
        // cgroup v2: one hierarchy; pids must be enabled for children.
        if controllers.is_empty() {
            let dir = Path::new("/sys/fs/cgroup").join(rel);
            let enabled =
                std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
            if enabled.split_whitespace().any(|c| c == "pids") && writable(&dir) {
                return Some(dir);
            }
        }
    }
    None
}

fn writable(dir: &Path) -> bool {
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok()
}
