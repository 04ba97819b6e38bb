//! File locks: who holds which, who waits for whom, and the circle a
//! deadlock makes, named by the lock files as the programs opened them.

use crate::pid::Pid;
use crate::procfs;

/// A process waiting for a file lock (flock or fcntl), and who holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockWait {
    pub waiter: Pid,
    pub holder: Pid,
    /// The lock waited for: `L2.lock`, or `records.db byte 1`.
    pub lock: String,
}

/// Names the file of a lock from the descriptors of `pids` (the holder
/// and the waiter have it open), with the bytes for a record lock.
fn lock_names(
    locks: &[procfs::FileLockEntry],
    pids: &[Pid],
) -> impl Fn(&procfs::FileLockEntry) -> String {
    let wanted: std::collections::HashSet<u64> = locks.iter().map(|l| l.inode).collect();
    let mut files = std::collections::HashMap::new();
    for &pid in pids {
        for (fd, target) in procfs::fds(pid) {
            let Some(info) = procfs::fd_info(pid, fd) else {
                continue;
            };
            if let (Some(inode), Some(name)) = (info.inode, fd_name(pid, fd, &target))
                && wanted.contains(&inode)
            {
                files.insert(inode, name);
            }
        }
    }
    move |l: &procfs::FileLockEntry| {
        let file = files
            .get(&l.inode)
            .cloned()
            .unwrap_or_else(|| format!("the file with inode {}", l.inode));
        with_range(l, file)
    }
}

/// The file name of descriptor `fd` of `pid`, read as `target` before a
/// look at its fdinfo: `None` for a pipe or a socket, or if the descriptor
/// now names another file (closed and its number reused in between).
fn fd_name(pid: Pid, fd: i32, target: &str) -> Option<String> {
    if !target.starts_with('/') || procfs::fd_target(pid, fd).as_deref() != Some(target) {
        return None;
    }
    let name = std::path::Path::new(target)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| target.to_string());
    Some(name)
}

/// `file`, with the bytes a record lock covers.
fn with_range(l: &procfs::FileLockEntry, file: String) -> String {
    match (l.start, l.end) {
        (0, None) => file,
        (a, Some(b)) if a == b => format!("{file} byte {a}"),
        (a, Some(b)) => format!("{file} bytes {a}-{b}"),
        (a, None) => format!("{file} from byte {a}"),
    }
}

/// Who among `pids` waits for a file lock, for which, held by whom: from
/// `/proc/locks`, where a waiter's line (`N: -> ...`) follows the line of
/// the lock `N` it waits behind. `/proc/locks` may show a lock twice (see
/// [`procfs::file_locks`]): each wait is listed once.
pub fn lock_waits(pids: &[Pid]) -> Vec<LockWait> {
    let locks = procfs::file_locks();
    let name = lock_names(&locks, pids);
    let mut waits: Vec<LockWait> = Vec::new();
    for w in locks.iter().filter(|w| w.waiting && pids.contains(&w.pid)) {
        let Some(held) = locks.iter().find(|h| !h.waiting && h.id == w.id) else {
            continue;
        };
        let wait = LockWait {
            waiter: w.pid,
            holder: held.pid,
            lock: name(held),
        };
        if !waits.contains(&wait) {
            waits.push(wait);
        }
    }
    waits
}

/// A file lock a process holds, and what it is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLock {
    pub lock: procfs::FileLockEntry,
    /// `L2.lock`, or `records.db byte 1`.
    pub name: String,
}

/// The file locks `pid` holds, each named by the descriptor it holds it
/// through. From its descriptors' fdinfo, not from `/proc/locks`, which
/// can show a lock twice or miss it while other processes lock and unlock
/// (see [`procfs::file_locks`]).
pub fn held_locks(pid: Pid) -> Vec<HeldLock> {
    let mut held = Vec::new();
    for (fd, target) in procfs::fds(pid) {
        let Some(info) = procfs::fd_info(pid, fd) else {
            continue;
        };
        let file = fd_name(pid, fd, &target);
        for lock in info.locks.into_iter().filter(|l| !l.waiting) {
            let file = file
                .clone()
                .unwrap_or_else(|| format!("the file with inode {}", lock.inode));
            held.push(HeldLock {
                name: with_range(&lock, file),
                lock,
            });
        }
    }
    held
}

/// The file locks `pid` holds, named.
pub fn locks_held(pid: Pid) -> Vec<String> {
    held_locks(pid).into_iter().map(|h| h.name).collect()
}

/// A circle of processes among `pids`, each waiting for a file lock the
/// next one holds: "process A holds L1.lock and waits for L2.lock; process
/// B holds L2.lock and waits for L1.lock". `label` names a process.
///
/// A deadlock lasts, but one read of `/proc/locks` may miss a wait of the
/// circle (see [`procfs::file_locks`]): it is read again, up to five
/// times, before there is said to be none.
pub fn lock_cycle(pids: &[Pid], label: &dyn Fn(Pid) -> String) -> Option<String> {
    (0..5).find_map(|_| cycle_in(&lock_waits(pids), label))
}

/// The first circle among `waits`, in words.
fn cycle_in(waits: &[LockWait], label: &dyn Fn(Pid) -> String) -> Option<String> {
    let next = |pid: Pid| waits.iter().find(|w| w.waiter == pid);
    'starts: for start in waits {
        // Follow waiter -> holder until a process repeats.
        let mut path = vec![start.waiter];
        let mut at = start.holder;
        while !path.contains(&at) {
            path.push(at);
            match next(at) {
                Some(w) => at = w.holder,
                // The holder is not waiting: no circle through here.
                None => continue 'starts,
            }
        }
        let circle = &path[path.iter().position(|&p| p == at)?..];
        let sentences: Vec<String> = circle
            .iter()
            .enumerate()
            .map(|(i, &pid)| {
                let before = circle[(i + circle.len() - 1) % circle.len()];
                let holds = next(before).map(|w| w.lock.clone()).unwrap_or_default();
                let wants = next(pid).map(|w| w.lock.clone()).unwrap_or_default();
                format!("{} holds {holds} and waits for {wants}", label(pid))
            })
            .collect();
        return Some(sentences.join("; "));
    }
    None
}
