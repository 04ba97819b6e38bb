//! Explaining a hang: for every process still alive, where it is blocked and
//! on what, in words a student can act on.

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

/// Who a process is, relative to the program the checker started.
fn role(s: &Stat, program: i32, checker: i32) -> String {
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
fn holders(target: &str, want_write: bool, procs: &[Stat], checker: i32) -> Vec<String> {
    let mut names = Vec::new();
    let mut pids: Vec<i32> = procs.iter().map(|s| s.pid).collect();
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

/// One sentence on where process `s` is and what it waits for.
pub fn where_blocked(s: &Stat, procs: &[Stat], program: i32, checker: i32) -> String {
    let who = role(s, program, checker);
    match s.state {
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
            let what = describe_target(&target);
            let mut sentence = format!("{who} is blocked in {name}() on fd {fd}, {what}");
            if target.starts_with("pipe:") {
                if name.starts_with("read") {
                    let writers = holders(&target, true, procs, checker);
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
pub fn hang_report(program: i32, checker: i32) -> Vec<String> {
    let procs = procfs::descendants(checker);
    procs
        .iter()
        .map(|s| where_blocked(s, &procs, program, checker))
        .collect()
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

    #[test]
    fn says_where_a_reader_of_an_open_pipe_waits() {
        use std::process::{Command, Stdio};
        // `cat` reads its stdin, a pipe whose write end the test holds.
        let mut cat = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let me = std::process::id() as i32;
        let pid = cat.id() as i32;
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
        drop(cat.stdin.take());
        cat.wait().unwrap();
        assert!(
            sentence.contains("blocked in read() on fd 0, a pipe"),
            "{sentence}"
        );
        assert!(
            sentence.contains("write end is still open in the checker"),
            "{sentence}"
        );
    }
}
