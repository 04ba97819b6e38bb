//! Explaining a hang: for every process still alive, where it is blocked and
//! on what, in words a student can act on.

mod locks;

pub use locks::{held_locks, lock_cycle, lock_waits, locks_held};

use crate::pid::Pid;
use crate::procfs::{self, Stat};

/// The name of a system call from its number on this architecture, for the
/// calls a blocked process is likely to sit in.
pub fn syscall_name(nr: i64) -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    const TABLE: &[(i64, &str)] = &[
        (0, "read"),
        (1, "write"),
        (2, "open"),
        (7, "poll"),
        (19, "readv"),
        (20, "writev"),
        (23, "select"),
        (24, "sched_yield"),
        (34, "pause"),
        (35, "nanosleep"),
        (42, "connect"),
        (43, "accept"),
        (44, "sendto"),
        (45, "recvfrom"),
        (46, "sendmsg"),
        (47, "recvmsg"),
        (61, "wait4"),
        (64, "semget"),
        (65, "semop"),
        (69, "msgsnd"),
        (70, "msgrcv"),
        (72, "fcntl"),
        (73, "flock"),
        (128, "rt_sigtimedwait"),
        (130, "rt_sigsuspend"),
        (202, "futex"),
        (220, "semtimedop"),
        (230, "clock_nanosleep"),
        (232, "epoll_wait"),
        (242, "mq_timedsend"),
        (243, "mq_timedreceive"),
        (247, "waitid"),
        (257, "openat"),
        (270, "pselect6"),
        (275, "splice"),
        (271, "ppoll"),
        (281, "epoll_pwait"),
        (288, "accept4"),
        (441, "epoll_pwait2"),
    ];
    #[cfg(target_arch = "aarch64")]
    const TABLE: &[(i64, &str)] = &[
        (22, "epoll_pwait"),
        (25, "fcntl"),
        (32, "flock"),
        (56, "openat"),
        (63, "read"),
        (64, "write"),
        (65, "readv"),
        (66, "writev"),
        (72, "pselect6"),
        (73, "ppoll"),
        (76, "splice"),
        (95, "waitid"),
        (98, "futex"),
        (101, "nanosleep"),
        (115, "clock_nanosleep"),
        (124, "sched_yield"),
        (133, "rt_sigsuspend"),
        (137, "rt_sigtimedwait"),
        (182, "mq_timedsend"),
        (183, "mq_timedreceive"),
        (188, "msgrcv"),
        (189, "msgsnd"),
        (193, "semop"),
        (192, "semtimedop"),
        (202, "accept"),
        (203, "connect"),
        (206, "sendto"),
        (207, "recvfrom"),
        (211, "sendmsg"),
        (212, "recvmsg"),
        (242, "accept4"),
        (260, "wait4"),
        (441, "epoll_pwait2"),
    ];
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const TABLE: &[(i64, &str)] = &[];
    TABLE.iter().find(|(n, _)| *n == nr).map(|(_, name)| *name)
}

/// Calls whose first argument is a file descriptor worth describing.
fn first_arg_is_fd(name: &str) -> bool {
    matches!(
        name,
        "read"
            | "write"
            | "readv"
            | "writev"
            | "accept"
            | "accept4"
            | "connect"
            | "sendto"
            | "recvfrom"
            | "sendmsg"
            | "recvmsg"
            | "flock"
            | "fcntl"
            | "mq_timedsend"
            | "mq_timedreceive"
    )
}

/// The programs a scenario started: pid and name. With one program, the
/// report calls it "the program"; with several, it names each one.
pub type Programs<'a> = &'a [(Pid, &'a str)];

/// Who a process is, relative to the programs the checker started.
fn role_among(s: &Stat, programs: Programs, checker: Pid) -> String {
    if let [(program, _)] = programs {
        return role(s, *program, checker);
    }
    if let Some((_, name)) = programs.iter().find(|(pid, _)| *pid == s.pid) {
        format!("{name} (pid {})", s.pid)
    } else if let Some((_, name)) = programs.iter().find(|(pid, _)| *pid == s.ppid) {
        format!("{name}'s child {}", s.pid)
    } else {
        role(s, Pid::from_raw(0), checker)
    }
}

/// Who a process is, relative to the program the checker started.
fn role(s: &Stat, program: Pid, checker: Pid) -> String {
    if s.pid == program {
        format!("the program (pid {})", s.pid)
    } else if s.ppid == program {
        format!("its child {}", s.pid)
    } else if s.ppid == checker {
        format!(
            "process {} (orphaned: its parent exited, the checker adopted it)",
            s.pid
        )
    } else {
        format!("process {} (child of {})", s.pid, s.ppid)
    }
}

/// Names the processes (the checker included) holding `target` open, with
/// the given access mode (0 read, 1 write), among `procs`.
fn holders(target: &str, want_write: bool, procs: &[Stat], checker: Pid) -> Vec<String> {
    let mut names = Vec::new();
    let mut pids: Vec<Pid> = procs.iter().map(|s| s.pid).collect();
    pids.push(checker);
    for pid in pids {
        let holds = procfs::fds(pid).into_iter().any(|(fd, t)| {
            t == target
                && procfs::fd_access(pid, fd)
                    .map(|a| if want_write { a != 0 } else { a != 1 })
                    .unwrap_or(false)
        });
        if holds {
            names.push(if pid == checker {
                "the checker".to_string()
            } else {
                pid.to_string()
            });
        }
    }
    names
}

fn describe_target(target: &str) -> &'static str {
    if target.starts_with("pipe:") {
        "a pipe"
    } else if target.starts_with("socket:") {
        "a socket"
    } else if target.starts_with("/dev/mqueue") || target.starts_with("/mqueue") {
        "a message queue"
    } else {
        "a file"
    }
}

/// The FIFO's file name, if descriptor `fd` of `pid` is a FIFO (a named
/// pipe), even one whose name was removed since.
fn fifo_name(pid: Pid, fd: i32, target: &str) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    if !target.starts_with('/') {
        return None;
    }
    let meta = std::fs::metadata(format!("/proc/{pid}/fd/{fd}")).ok()?;
    if !meta.file_type().is_fifo() {
        return None;
    }
    let path = target.trim_end_matches(" (deleted)");
    let name = path.rsplit('/').next().unwrap_or(path);
    Some(if path.len() < target.len() {
        format!("{name} (its name already removed)")
    } else {
        name.to_string()
    })
}

/// One sentence on where process `s` is and what it waits for.
pub fn where_blocked(s: &Stat, procs: &[Stat], program: Pid, checker: Pid) -> String {
    where_blocked_among(s, procs, &[(program, "the program")], checker)
}

/// Like [`where_blocked`], with every program the scenario started.
pub fn where_blocked_among(s: &Stat, procs: &[Stat], programs: Programs, checker: Pid) -> String {
    let who = role_among(s, programs, checker);
    match s.state {
        // The checker reaps the program itself once it looks.
        'Z' | 'X' if programs.iter().any(|(p, _)| *p == s.pid) => {
            return format!("{who} has exited");
        }
        'Z' | 'X' => return format!("{who} has exited but nobody waited for it (a zombie)"),
        'T' | 't' => return format!("{who} is stopped (by SIGSTOP or a debugger)"),
        _ => {}
    }
    let b = procfs::blocked(s.pid);
    if b.running || s.state == 'R' {
        return format!("{who} is running, using CPU: a loop that never waits?");
    }
    let Some((nr, args)) = b.syscall else {
        let w = b.wchan.unwrap_or_else(|| "somewhere".into());
        return format!("{who} is blocked in the kernel ({w})");
    };
    let name = syscall_name(nr)
        .map(str::to_string)
        .unwrap_or_else(|| format!("system call {nr}"));
    let wchan = b.wchan.clone().unwrap_or_default();

    if name == "wait4" || name == "waitid" {
        let target = args[0] as i64 as i32;
        let whom = if name == "wait4" && target > 0 {
            format!("child {target}")
        } else {
            "any child".to_string()
        };
        return format!("{who} is blocked in {name}(), waiting for {whom} to exit");
    }
    if wchan.contains("fifo_open") || wchan.contains("wait_for_partner") {
        return format!(
            "{who} is blocked in {name}() opening a FIFO: nobody has opened its other end yet"
        );
    }
    if matches!(name.as_str(), "nanosleep" | "clock_nanosleep" | "pause") {
        return format!("{who} is sleeping in {name}()");
    }
    if name == "futex" {
        return format!(
            "{who} is blocked in futex(): waiting for a lock, a semaphore (sem_wait) or a condition"
        );
    }
    if first_arg_is_fd(&name) {
        let fd = args[0] as i64 as i32;
        if let Some(target) = procfs::fd_target(s.pid, fd) {
            let fifo = fifo_name(s.pid, fd, &target);
            let what = match &fifo {
                Some(fifo) => format!("the FIFO {fifo}"),
                None => describe_target(&target).to_string(),
            };
            let mut sentence = format!("{who} is blocked in {name}() on fd {fd}, {what}");
            if name == "flock" || name == "fcntl" {
                let pids: Vec<Pid> = procs.iter().map(|p| p.pid).collect();
                if let Some(w) = lock_waits(&pids).into_iter().find(|w| w.waiter == s.pid) {
                    let holder = procs
                        .iter()
                        .find(|p| p.pid == w.holder)
                        .map(|p| role_among(p, programs, checker))
                        .unwrap_or_else(|| format!("process {}", w.holder));
                    sentence.push_str(&format!(
                        ", waiting for a lock on {} that {holder} holds",
                        w.lock
                    ));
                    return sentence;
                }
            }
            if target.starts_with("pipe:") || fifo.is_some() {
                if name.starts_with("read") {
                    let writers: Vec<String> = holders(&target, true, procs, checker)
                        .into_iter()
                        .map(|w| {
                            if w == s.pid.to_string() {
                                format!("{w} (itself)")
                            } else {
                                w
                            }
                        })
                        .collect();
                    if writers.is_empty() {
                        sentence.push_str(" with no writer left");
                    } else {
                        sentence.push_str(&format!(
                            " whose write end is still open in {}",
                            join_names(&writers)
                        ));
                    }
                    if fd == 0 && writers == ["the checker"] {
                        sentence.push_str(
                            " (its standard input: the checker holds it open on purpose, \
                             and closes it once it has seen what it waits for)",
                        );
                    }
                } else if name.starts_with("write") {
                    sentence.push_str(" that is full: nobody reads the other end");
                    let readers = holders(&target, false, procs, checker);
                    if !readers.is_empty() {
                        sentence
                            .push_str(&format!(" (open for reading in {})", join_names(&readers)));
                    }
                }
            }
            return sentence;
        }
    }
    if wchan.is_empty() {
        format!("{who} is blocked in {name}()")
    } else {
        format!("{who} is blocked in {name}() ({wchan})")
    }
}

fn join_names(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A report of every live process under the checker: one line each.
pub fn hang_report(program: Pid, checker: Pid) -> Vec<String> {
    hang_report_among(&[(program, "the program")], checker)
}

/// Like [`hang_report`], naming each of the programs a scenario started.
pub fn hang_report_among(programs: Programs, checker: Pid) -> Vec<String> {
    let procs = procfs::descendants(checker);
    let mut lines: Vec<String> = procs
        .iter()
        .map(|s| where_blocked_among(s, &procs, programs, checker))
        .collect();
    // Processes waiting for each other's file locks: name the circle.
    let pids: Vec<Pid> = procs.iter().map(|p| p.pid).collect();
    let label = |pid: Pid| {
        procs
            .iter()
            .find(|p| p.pid == pid)
            .map(|p| role_among(p, programs, checker))
            .unwrap_or_else(|| format!("process {pid}"))
    };
    if let Some(circle) = lock_cycle(&pids, &label) {
        lines.push(format!("a deadlock: {circle}"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_common_blocking_calls() {
        for name in ["read", "write", "wait4", "futex", "openat", "poll"] {
            let found = (0..500).any(|nr| syscall_name(nr) == Some(name));
            assert!(found, "{name} missing from the table");
        }
    }

    #[test]
    fn lists_names_in_prose() {
        let names = |v: &[&str]| join_names(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(names(&["1"]), "1");
        assert_eq!(names(&["1", "2"]), "1 and 2");
        assert_eq!(names(&["1", "2", "3"]), "1, 2 and 3");
    }

    /// What the report says of `pid`, a child of this test, once it is
    /// blocked in read() (or after two seconds).
    fn once_blocked_in_read(pid: Pid) -> String {
        let me = Pid::this();
        let mut sentence = String::new();
        for _ in 0..200 {
            let procs = procfs::descendants(me);
            if let Some(s) = procs.iter().find(|s| s.pid == pid) {
                sentence = where_blocked(s, &procs, pid, me);
                if sentence.contains("read()") {
                    break;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        sentence
    }

    #[test]
    fn names_the_fifo_a_reader_waits_on() {
        use std::os::unix::fs::OpenOptionsExt;
        use std::process::{Command, Stdio};
        let dir = std::env::temp_dir().join(format!("diagnose-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("requests");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // The test holds a write end, so `cat` opens at once and waits in read().
        let _reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let mut cat = Command::new("cat")
            .arg(&path)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let sentence = once_blocked_in_read(Pid::of_child(&cat));
        drop(writer);
        drop(_reader);
        cat.wait().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(sentence.contains("the FIFO requests"), "{sentence}");
        // Another test's child, between its fork and its exec, may hold a
        // copy for an instant: the checker must be named, maybe not alone.
        assert!(
            sentence.contains("write end is still open in"),
            "{sentence}"
        );
        assert!(sentence.contains("the checker"), "{sentence}");
    }

    #[test]
    fn says_where_a_reader_of_an_open_pipe_waits() {
        use std::process::{Command, Stdio};
        // `cat` reads its stdin, a pipe whose write end the test holds.
        let mut cat = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let sentence = once_blocked_in_read(Pid::of_child(&cat));
        drop(cat.stdin.take());
        cat.wait().unwrap();
        assert!(
            sentence.contains("blocked in read() on fd 0, a pipe"),
            "{sentence}"
        );
        // Another test's child, between its fork and its exec, may hold a
        // copy for an instant: the checker must be named, maybe not alone.
        assert!(
            sentence.contains("write end is still open in"),
            "{sentence}"
        );
        assert!(sentence.contains("the checker"), "{sentence}");
    }
    #[test]
    fn says_who_holds_the_lock_a_process_waits_for() {
        use std::process::{Command, Stdio};
        // util-linux's flock(1): one holds the lock while `cat` reads its
        // stdin, the other waits for it.
        let dir = std::env::temp_dir().join(format!("diagnose-flock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("L1.lock");
        let Ok(mut holder) = Command::new("flock")
            .arg(&file)
            .arg("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
        else {
            return; // no flock(1) here
        };
        let me = Pid::this();
        let held = |pid: Pid| locks_held(pid).contains(&"L1.lock".to_string());
        for _ in 0..500 {
            if held(Pid::of_child(&holder)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut waiter = Command::new("flock")
            .arg(&file)
            .arg("true")
            .spawn()
            .unwrap();
        let pid = Pid::of_child(&waiter);
        let mut sentence = String::new();
        for _ in 0..500 {
            let procs = procfs::descendants(me);
            if let Some(s) = procs.iter().find(|s| s.pid == pid) {
                sentence = where_blocked(s, &procs, pid, me);
                if sentence.contains("waiting for a lock") {
                    break;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        drop(holder.stdin.take());
        holder.wait().unwrap();
        waiter.wait().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            sentence.contains("blocked in flock()")
                && sentence.contains(&format!(
                    "waiting for a lock on L1.lock that process {}",
                    holder.id()
                )),
            "{sentence}"
        );
    }
    #[test]
    fn names_the_circle_of_a_lock_deadlock() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        // Two Python processes take two flock locks in opposite orders,
        // each taking its second only once both hold their first.
        let dir = std::env::temp_dir().join(format!("diagnose-circle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = "import fcntl, sys\n\
            a = open(sys.argv[1] + '.lock', 'w'); fcntl.flock(a, fcntl.LOCK_EX)\n\
            print('took', flush=True); sys.stdin.readline()\n\
            b = open(sys.argv[2] + '.lock', 'w'); fcntl.flock(b, fcntl.LOCK_EX)\n";
        let start = |first: &str, second: &str| {
            Command::new("python3")
                .args(["-c", script, first, second])
                .current_dir(&dir)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
        };
        let (Ok(mut a), Ok(mut b)) = (start("L1", "L2"), start("L2", "L1")) else {
            return; // no python3 here
        };
        for p in [&mut a, &mut b] {
            let mut line = String::new();
            std::io::BufRead::read_line(
                &mut std::io::BufReader::new(p.stdout.as_mut().unwrap()),
                &mut line,
            )
            .unwrap();
        }
        for p in [&mut a, &mut b] {
            p.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        }
        let pids = [Pid::of_child(&a), Pid::of_child(&b)];
        let label = |pid: Pid| format!("P{pid}");
        let mut circle = None;
        for _ in 0..500 {
            circle = lock_cycle(&pids, &label);
            if circle.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        a.kill().unwrap();
        b.kill().unwrap();
        a.wait().unwrap();
        b.wait().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let circle = circle.expect("a circle");
        let (pa, pb) = (pids[0], pids[1]);
        let one = format!("P{pa} holds L1.lock and waits for L2.lock");
        let other = format!("P{pb} holds L2.lock and waits for L1.lock");
        assert!(circle.contains(&one) && circle.contains(&other), "{circle}");
    }
}
