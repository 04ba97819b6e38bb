//! What every scenario runs inside: a fresh temporary directory, a unique
//! prefix for named IPC objects, and afterwards the clean-up of every
//! process and IPC object the student's code left behind.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::pid::Pid;
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

use crate::cgroup::PidsCgroup;
use crate::procfs;

/// Makes the checker the "child subreaper" of everything it starts: a
/// process whose parent exits is re-parented to the checker instead of to
/// init, so nothing the student's code forks can escape the clean-up.
pub fn become_subreaper() -> Result<()> {
    nix::sys::prctl::set_child_subreaper(true).context("prctl(PR_SET_CHILD_SUBREAPER)")
}

/// On Ctrl-C (SIGINT), SIGTERM or SIGHUP, kill every process the checker
/// started before exiting: a terminal's Ctrl-C reaches only the checker's
/// own process group, not the groups it gives the programs it runs.
///
/// Call first thing in `main`, before any thread exists: the signals are
/// blocked in every thread, and one thread waits for them.
pub fn clean_up_on_interrupt() -> Result<()> {
    use nix::sys::signal::SigSet;
    let mut set = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(sig);
    }
    set.thread_block().context("blocking SIGINT and SIGTERM")?;
    std::thread::Builder::new()
        .name("interrupt".into())
        .spawn(move || {
            if let Ok(sig) = set.wait() {
                // The checkers among them (`check --all` runs several) die
                // before their sandboxes' Drop: note who they were first.
                let mut pids: Vec<Pid> = procfs::descendants(checker_pid())
                    .into_iter()
                    .map(|s| s.pid)
                    .collect();
                pids.push(checker_pid());
                kill_all_descendants(Duration::from_secs(2));
                remove_left_by(&pids);
                eprintln!("\ninterrupted: every process the checker started is stopped");
                // The shell's convention: 128 + the signal's number.
                std::process::exit(128 + sig as i32);
            }
        })
        .context("starting the thread that waits for SIGINT and SIGTERM")?;
    Ok(())
}

/// Removes what the checkers among `pids` leave when they are stopped
/// in the middle of a scenario: its directory (`TMP/lab-PID-N-NAME`) and
/// its named IPC objects (`/lab-PID-N-...`), as [`Sandbox`]'s Drop would.
fn remove_left_by(pids: &[Pid]) {
    let prefixes: Vec<String> = pids.iter().map(|p| format!("lab-{p}-")).collect();
    let prefixes: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    let tmp = std::env::temp_dir();
    let dirs = std::iter::once(tmp.as_path()).chain(IPC_DIRS.iter().map(Path::new));
    for path in named(dirs, &prefixes) {
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
}

/// The entries of `dirs` whose names start with one of `prefixes`; a
/// named semaphore counts by its name, without the `sem.` that Linux puts
/// before it in /dev/shm.
fn named<'a>(dirs: impl Iterator<Item = &'a Path>, prefixes: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let bare = name.strip_prefix("sem.").unwrap_or(&name);
            if prefixes.iter().any(|p| bare.starts_with(p)) {
                found.push(e.path());
            }
        }
    }
    found
}

/// This checker's pid.
pub fn checker_pid() -> Pid {
    Pid::this()
}

/// The directories where Linux shows named IPC objects as files.
const IPC_DIRS: &[&str] = &["/dev/shm", "/dev/mqueue"];

/// A scenario's private place: removed, with its IPC objects, on drop.
pub struct Sandbox {
    pub tmp: PathBuf,
    /// Prefix for every named IPC object: `/lab-PID-N-` (POSIX names start
    /// with a slash). The programs get it as `LAB_IPC_PREFIX`.
    pub ipc_prefix: String,
    /// A hard cap on processes, where the machine allows one.
    pub cgroup: Option<PidsCgroup>,
}

impl Sandbox {
    /// A sandbox for a scenario allowing `max_procs` processes at once.
    pub fn new(label: &str, max_procs: usize) -> Result<Sandbox> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let me = checker_pid();
        let tmp = std::env::temp_dir().join(format!("lab-{me}-{n}-{label}"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
        }
        std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        // Threads count as tasks too: leave room for a few per process.
        let cgroup = PidsCgroup::create(&format!("lab-{me}-{n}"), max_procs * 4 + 16);
        Ok(Sandbox {
            tmp,
            ipc_prefix: format!("/lab-{me}-{n}-"),
            cgroup,
        })
    }

    /// Named IPC objects that exist under this sandbox's prefix, as paths
    /// (`/dev/shm/lab-1-0-counter`, `/dev/mqueue/lab-1-0-requests`, ...).
    pub fn ipc_objects(&self) -> Vec<PathBuf> {
        let bare = self.ipc_prefix.trim_start_matches('/');
        let mut found = named(IPC_DIRS.iter().map(Path::new), &[bare]);
        found.sort();
        found
    }

    /// Removes the temporary directory and every IPC object under the prefix.
    fn remove_files(&self) {
        for path in self.ipc_objects() {
            let _ = std::fs::remove_file(&path);
        }
        let _ = remove_tree(&self.tmp);
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        kill_all_descendants(Duration::from_secs(5));
        self.remove_files();
    }
}

fn remove_tree(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        std::fs::remove_dir_all(path)
    } else {
        Ok(())
    }
}

/// Kills and reaps every descendant of the checker (alive, stopped, or
/// escaped into its own session), until none is left or `patience` runs
/// out. Returns the pids that could not be removed.
pub fn kill_all_descendants(patience: Duration) -> Vec<Pid> {
    let me = checker_pid();
    let my_group = Pid::from(nix::unistd::getpgrp());
    let until = Instant::now() + patience;
    loop {
        let left = procfs::descendants(me);
        // Whole process groups first: the kernel delivers a group kill
        // atomically with respect to fork, so a fork bomb that stays in its
        // group dies at once, children being forked included.
        let mut groups: Vec<Pid> = left
            .iter()
            .map(|s| s.pgid)
            .filter(|&g| g.as_raw() > 1 && g != my_group)
            .collect();
        groups.sort_unstable();
        groups.dedup();
        for group in groups {
            let _ = nix::sys::signal::killpg(group.into(), Signal::SIGKILL);
        }
        // Then every process one by one, for those that left their group.
        for s in left.iter().filter(|s| !s.is_zombie()) {
            let _ = kill(nix::unistd::Pid::from(s.pid), Signal::SIGKILL);
        }
        reap_zombies();
        if left.is_empty() {
            return Vec::new();
        }
        if Instant::now() >= until {
            return procfs::descendants(me).into_iter().map(|s| s.pid).collect();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Reaps every child of the checker that has already exited.
pub fn reap_zombies() {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_removes_its_directory_and_ipc_objects() {
        let sandbox = Sandbox::new("unit", 4).unwrap();
        let tmp = sandbox.tmp.clone();
        std::fs::write(tmp.join("file"), "x").unwrap();
        let shm = PathBuf::from(format!(
            "/dev/shm/{}obj",
            sandbox.ipc_prefix.trim_start_matches('/')
        ));
        let have_shm = std::fs::write(&shm, "x").is_ok();
        if have_shm {
            assert_eq!(sandbox.ipc_objects(), vec![shm.clone()]);
        }
        // Dropping would also kill every child of this test process,
        // including other tests' children: remove only the files here.
        sandbox.remove_files();
        std::mem::forget(sandbox);
        assert!(!tmp.exists());
        assert!(!shm.exists());
    }
}
