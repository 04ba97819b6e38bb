//! Reading processes from `/proc`: who is a descendant of whom, in what
//! state, blocked where, and holding which descriptors.

use crate::pid::Pid;
use std::fs;

/// One line of `/proc/PID/stat`, the fields we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: Pid,
    pub comm: String,
    /// R running, S sleeping, D disk sleep, Z zombie, T stopped, t traced.
    pub state: char,
    pub ppid: Pid,
    pub pgid: Pid,
    pub sid: Pid,
}

impl Stat {
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z' || self.state == 'X'
    }
}

/// Reads `/proc/PID/stat`; `None` once the process is gone.
pub fn stat(pid: Pid) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<Stat> {
    // "PID (COMM) STATE PPID PGRP SESSION ..."; COMM may hold spaces and
    // parentheses, so split at the last ')'.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let comm = text[open + 1..close].to_string();
    let mut rest = text[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgid = rest.next()?.parse().ok()?;
    let sid = rest.next()?.parse().ok()?;
    Some(Stat {
        pid,
        comm,
        state,
        ppid,
        pgid,
        sid,
    })
}

/// The CPU time `pid` has used so far, user and system, all its threads
/// (fields utime and stime of `/proc/PID/stat`); `None` once it is gone.
pub fn cpu_time(pid: Pid) -> Option<std::time::Duration> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = cpu_ticks(&text)?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(std::time::Duration::from_micros(
        ticks * 1_000_000 / per_second,
    ))
}

/// How long the main thread of `pid` has been on a CPU, and how long it has
/// waited for one while runnable (`/proc/PID/schedstat`, in nanoseconds).
/// A process that never sleeps spends nearly all its wall time in one or
/// the other, however loaded the machine is.
pub fn sched_times(pid: Pid) -> Option<(std::time::Duration, std::time::Duration)> {
    let text = fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    let mut words = text.split_whitespace();
    let ran: u64 = words.next()?.parse().ok()?;
    let queued: u64 = words.next()?.parse().ok()?;
    Some((
        std::time::Duration::from_nanos(ran),
        std::time::Duration::from_nanos(queued),
    ))
}

/// utime + stime, in clock ticks, from the text of `/proc/PID/stat`.
fn cpu_ticks(text: &str) -> Option<u64> {
    // Fields after "(COMM)": state ppid pgrp session tty_nr tpgid flags
    // minflt cminflt majflt cmajflt utime stime ...
    let close = text.rfind(')')?;
    let mut rest = text[close + 1..].split_whitespace().skip(11);
    let utime: u64 = rest.next()?.parse().ok()?;
    let stime: u64 = rest.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The direct children of `pid`, from every thread's `children` list.
pub fn children(pid: Pid) -> Vec<Pid> {
    let mut found = Vec::new();
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return found;
    };
    for task in tasks.flatten() {
        let path = task.path().join("children");
        if let Ok(text) = fs::read_to_string(path) {
            found.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<Pid>().ok()),
            );
        }
    }
    found.sort_unstable();
    found.dedup();
    found
}

/// Every descendant of `root` (not `root` itself), parents before children.
pub fn descendants(root: Pid) -> Vec<Stat> {
    let mut out = Vec::new();
    let mut queue = children(root);
    let mut seen = std::collections::HashSet::new();
    while let Some(pid) = queue.pop() {
        if !seen.insert(pid) {
            continue;
        }
        if let Some(s) = stat(pid) {
            queue.extend(children(pid));
            out.push(s);
        }
    }
    out
}

/// Where a process is blocked, as far as `/proc` tells.
#[derive(Debug, Clone, Default)]
pub struct Blocked {
    /// The kernel function it sleeps in (`/proc/PID/wchan`), e.g. `pipe_read`.
    pub wchan: Option<String>,
    /// The system call it is in and its first arguments, unless running.
    pub syscall: Option<(i64, [u64; 3])>,
    /// `/proc/PID/syscall` said "running".
    pub running: bool,
}

pub fn blocked(pid: Pid) -> Blocked {
    let wchan = fs::read_to_string(format!("/proc/{pid}/wchan"))
        .ok()
        .map(|w| w.trim().to_string())
        .filter(|w| !w.is_empty() && w != "0");
    let raw = fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
    let mut words = raw.split_whitespace();
    let first = words.next().unwrap_or("");
    let running = first == "running";
    let syscall = first.parse::<i64>().ok().filter(|&nr| nr >= 0).map(|nr| {
        let mut args = [0u64; 3];
        for arg in &mut args {
            *arg = words
                .next()
                .and_then(|w| u64::from_str_radix(w.trim_start_matches("0x"), 16).ok())
                .unwrap_or(0);
        }
        (nr, args)
    });
    Blocked {
        wchan,
        syscall,
        running,
    }
}

/// What descriptor `fd` of `pid` refers to, e.g. `pipe:[1234]` or a path.
pub fn fd_target(pid: Pid, fd: i32) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// The access mode of a descriptor: 0 read, 1 write, 2 read and write.
pub fn fd_access(pid: Pid, fd: i32) -> Option<u32> {
    let info = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?;
    u32::from_str_radix(flags.trim(), 8).ok().map(|f| f & 0o3)
}

/// All the status flags of a descriptor (`flags:` in `/proc/PID/fdinfo/FD`,
/// e.g. `O_NONBLOCK` is 0o4000).
pub fn fd_flags(pid: Pid, fd: i32) -> Option<u32> {
    let info = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?;
    u32::from_str_radix(flags.trim(), 8).ok()
}

/// Every open descriptor of `pid`: (fd, target).
pub fn fds(pid: Pid) -> Vec<(i32, String)> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut out: Vec<(i32, String)> = dir
        .flatten()
        .filter_map(|e| {
            let fd = e.file_name().to_str()?.parse().ok()?;
            Some((fd, fd_target(pid, fd)?))
        })
        .collect();
    out.sort();
    out
}

/// One line of `/proc/PID/maps`: a range of the address space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// `rw-s`: read, write, execute, and `s` shared or `p` private.
    pub perms: String,
    /// The file mapped, `/dev/zero (deleted)` for shared anonymous memory,
    /// `[heap]`, or empty.
    pub path: String,
}

impl Mapping {
    pub fn is_shared(&self) -> bool {
        self.perms.ends_with('s')
    }

    pub fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.start && addr.saturating_add(len) <= self.end
    }
}

/// The memory mappings of `pid`, from `/proc/PID/maps`.
pub fn mappings(pid: Pid) -> Vec<Mapping> {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return Vec::new();
    };
    text.lines().filter_map(parse_mapping).collect()
}

fn parse_mapping(line: &str) -> Option<Mapping> {
    // "START-END PERMS OFFSET DEV INODE   PATH"
    let mut words = line.splitn(6, ' ');
    let (start, end) = words.next()?.split_once('-')?;
    let perms = words.next()?.to_string();
    let path = words.nth(3).unwrap_or("").trim().to_string();
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        perms,
        path,
    })
}

/// Reads `len` bytes at `addr` in the memory of `pid` (a descendant of the
/// checker), through `/proc/PID/mem`.
pub fn read_memory(pid: Pid, addr: u64, len: usize) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let file = fs::File::open(format!("/proc/{pid}/mem"))?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, addr)?;
    Ok(buf)
}

/// Whether descriptor `fd_a` of `pid_a` and `fd_b` of `pid_b` are the same
/// open file description (one `open`, shared by `dup` or inherited over
/// `fork`), by kcmp(2). `None` where the kernel does not say.
pub fn same_open_file(pid_a: Pid, fd_a: i32, pid_b: Pid, fd_b: i32) -> Option<bool> {
    const KCMP_FILE: libc::c_long = 0;
    // SAFETY: kcmp only compares kernel objects; it reads no memory of ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            libc::c_long::from(pid_a.as_raw()),
            libc::c_long::from(pid_b.as_raw()),
            KCMP_FILE,
            fd_a as libc::c_long,
            fd_b as libc::c_long,
        )
    };
    (r >= 0).then_some(r == 0)
}

/// One line of `/proc/locks`: a file lock held, or a process waiting for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLockEntry {
    /// The kernel's number for the lock; a waiter has the number of the
    /// lock it waits behind.
    pub id: u32,
    /// `FLOCK` (flock), `POSIX` (fcntl record lock), `OFDLCK`, ...
    pub kind: String,
    pub write: bool,
    /// The owner (for a waiter, the process that waits). -1 for OFD locks.
    pub pid: Pid,
    pub inode: u64,
    /// First and last byte locked; `None` for "to the end of the file".
    pub start: u64,
    pub end: Option<u64>,
    /// A `->` line: `pid` waits for lock `id`, held by someone else.
    pub waiting: bool,
}

/// Every file lock in the system, from `/proc/locks`.
///
/// Not a snapshot. The kernel walks its list of locks afresh at every
/// read(2), from the position where the previous read stopped (and
/// `read_to_string` starts with a read of 32 bytes). Locks taken or
/// released anywhere on the machine between two reads (by other checkers'
/// programs) shift the positions, so a lock can be shown twice, or not at
/// all: a process holding two flock locks, while four others took and
/// released locks in a loop, was shown wrongly in 774 reads of 20,000, in
/// 101 of them holding one of its locks twice and not the other. A lock
/// and its waiters are printed in one piece, though: a waiter's line is
/// true of the line above it. For the locks of one process, [`fd_info`].
pub fn file_locks() -> Vec<FileLockEntry> {
    fs::read_to_string("/proc/locks")
        .map(|text| text.lines().filter_map(parse_lock_line).collect())
        .unwrap_or_default()
}

/// What `/proc/PID/fdinfo/FD` says of a descriptor's open file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FdInfo {
    /// The inode of the file, as `/proc/locks` numbers it (`ino:`).
    pub inode: Option<u64>,
    /// The locks held through this descriptor (its `lock:` lines): for
    /// flock, the locks of this open file; for fcntl, the process's locks
    /// taken through it. Printed in one piece under the kernel's lock for
    /// the file, so none is shown twice or missed, unlike in `/proc/locks`.
    pub locks: Vec<FileLockEntry>,
}

/// Reads `/proc/PID/fdinfo/FD`; `None` once the descriptor or the process
/// is gone.
pub fn fd_info(pid: Pid, fd: i32) -> Option<FdInfo> {
    use std::os::unix::fs::MetadataExt;
    let text = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let mut info = parse_fd_info(&text);
    // Older kernels print no `ino:` line.
    if info.inode.is_none() {
        info.inode = fs::metadata(format!("/proc/{pid}/fd/{fd}"))
            .ok()
            .map(|m| m.ino());
    }
    Some(info)
}

fn parse_fd_info(text: &str) -> FdInfo {
    let mut info = FdInfo::default();
    for line in text.lines() {
        if let Some(ino) = line.strip_prefix("ino:") {
            info.inode = ino.trim().parse().ok();
        } else if let Some(lock) = line.strip_prefix("lock:") {
            info.locks.extend(parse_lock_line(lock));
        }
    }
    info
}

fn parse_lock_line(line: &str) -> Option<FileLockEntry> {
    // "2: -> FLOCK  ADVISORY  WRITE 12265 fe:00:10069403 0 EOF"
    let mut words = line.split_whitespace();
    let id = words.next()?.trim_end_matches(':').parse().ok()?;
    let mut kind = words.next()?;
    let waiting = kind == "->";
    if waiting {
        kind = words.next()?;
    }
    let _mandatory = words.next()?;
    let write = words.next()? == "WRITE";
    let pid = words.next()?.parse().ok()?;
    let inode = words.next()?.rsplit(':').next()?.parse().ok()?;
    let start = words.next()?.parse().ok()?;
    let end = words.next().and_then(|w| w.parse().ok());
    Some(FileLockEntry {
        id,
        kind: kind.to_string(),
        write,
        pid,
        inode,
        start,
        end,
        waiting,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_maps_lines() {
        let m = parse_mapping(
            "7f42bd073000-7f42bd074000 rw-s 00000000 00:01 4242                       /dev/zero (deleted)",
        )
        .unwrap();
        assert_eq!((m.start, m.end), (0x7f42bd073000, 0x7f42bd074000));
        assert!(m.is_shared() && m.contains(0x7f42bd073000, 16));
        assert_eq!(m.path, "/dev/zero (deleted)");
        let anon = parse_mapping("7ffd1000-7ffd2000 rw-p 00000000 00:00 0 ").unwrap();
        assert!(!anon.is_shared() && anon.path.is_empty());
    }

    #[test]
    fn reads_memory_and_maps_of_a_process() {
        let value: u64 = 0x1234_5678_9abc_def0;
        let addr = &value as *const u64 as u64;
        let me = Pid::this();
        assert!(mappings(me).iter().any(|m| m.contains(addr, 8)));
        let bytes = read_memory(me, addr, 8).unwrap();
        assert_eq!(bytes, value.to_ne_bytes());
    }

    #[test]
    fn parses_stat_with_odd_command_names() {
        let s = parse_stat("42 (a (weird) name) S 7 42 7 0 -1 4194560 0").unwrap();
        assert_eq!(s.pid, Pid::from_raw(42));
        assert_eq!(s.comm, "a (weird) name");
        assert_eq!(s.state, 'S');
        assert_eq!(
            (s.ppid, s.pgid, s.sid),
            (Pid::from_raw(7), Pid::from_raw(42), Pid::from_raw(7))
        );
    }

    #[test]
    fn reads_cpu_ticks() {
        let line = "42 (a b) S 1 42 42 0 -1 4194304 100 0 0 0 250 30 0 0 20 0 1 0";
        assert_eq!(cpu_ticks(line), Some(280));
        assert!(cpu_time(Pid::this()).is_some());
        if let Some((ran, _)) = sched_times(Pid::this()) {
            assert!(!ran.is_zero());
        }
    }

    #[test]
    fn sees_its_own_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = Pid::this();
        let found = descendants(me);
        assert!(
            found.iter().any(|s| s.pid == Pid::of_child(&child)),
            "{found:?}"
        );
        let s = stat(Pid::of_child(&child)).unwrap();
        assert_eq!(s.ppid, me);
        child.kill().unwrap();
        child.wait().unwrap();
    }
    #[test]
    fn parses_fdinfo_with_locks() {
        let info = parse_fd_info(
            "pos:\t0\nflags:\t02100002\nmnt_id:\t24\nino:\t10069403\n\
             lock:\t1: FLOCK  ADVISORY  WRITE 12263 fe:00:10069403 0 EOF\n",
        );
        assert_eq!(info.inode, Some(10069403));
        assert_eq!(info.locks.len(), 1);
        assert_eq!(
            (
                info.locks[0].pid,
                info.locks[0].inode,
                info.locks[0].waiting
            ),
            (Pid::from_raw(12263), 10069403, false)
        );
        assert!(parse_fd_info("pos:\t0\nflags:\t0100000\n").locks.is_empty());
    }

    #[test]
    fn sees_a_flock_through_its_descriptor() {
        use std::os::fd::AsRawFd;
        let path = std::env::temp_dir().join(format!("procfs-fdinfo-{}.lock", std::process::id()));
        let file = fs::File::create(&path).unwrap();
        let fd = file.as_raw_fd();
        let locked = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).unwrap();
        let info = fd_info(Pid::this(), fd).unwrap();
        drop(locked);
        fs::remove_file(&path).unwrap();
        assert_eq!(info.locks.len(), 1, "{info:?}");
        assert_eq!(Some(info.locks[0].inode), info.inode);
        assert_eq!(info.locks[0].pid, Pid::this());
    }

    #[test]
    fn parses_proc_locks_lines() {
        let held = parse_lock_line("2: FLOCK  ADVISORY  WRITE 12263 fe:00:10069403 0 EOF").unwrap();
        assert_eq!(
            (held.id, held.pid, held.inode, held.end),
            (2, Pid::from_raw(12263), 10069403, None)
        );
        assert!(!held.waiting && held.write && held.kind == "FLOCK");
        let waits = parse_lock_line("2: -> POSIX  ADVISORY  WRITE 12265 00:2e:77 1 1").unwrap();
        assert!(waits.waiting);
        assert_eq!(
            (waits.kind.as_str(), waits.start, waits.end),
            ("POSIX", 1, Some(1))
        );
    }
}
