//! Lab 04 — non-blocking I/O, and select, poll and epoll.
//!
//! The checker plays every producer. It creates the pipes, hands their read
//! ends to `mux` as descriptors 3, 4, ..., keeps the write ends, and writes
//! each message itself at moments it picks at random. It times how soon each
//! line comes out, looks in /proc for the call the program sleeps in between
//! messages, and compares the program's CPU time with the wall time, and
//! its wake-ups with the checker's writes (a loop that naps and looks
//! again sleeps, yet wakes hundreds of times a second). Under `mux-traffic`
//! every pipe talks at once, in pieces cut anywhere.
//!
//! Here the declarations; `spin`, `talk` (the conversation and its
//! diagnoses), `traffic` and `timeout` hold the scenarios.

mod spin;
mod talk;
mod timeout;
mod traffic;

use crate::pid::Pid;
use std::time::Duration;

use rand::Rng;
use rand::seq::IndexedRandom;

use crate::diagnose;
use crate::labs::Lab;
use crate::procfs;
use crate::sandbox::checker_pid;
use crate::scenario::{Fixture, Run, Scenario, Variant};

use spin::nonblocking_read;
use talk::{mux_epoll, mux_poll, mux_select};
use timeout::timeout;
use traffic::mux_traffic;

pub static LAB: Lab = Lab {
    number: 4,
    slug: "nonblocking-select",
    title: "Non-blocking I/O: select, poll and epoll",
    student: &["src/lib.rs", "src/select.rs", "src/poll.rs", "src/epoll.rs"],
    scenarios: &[
        Scenario {
            name: "nonblocking-read",
            points: 2,
            limit: Duration::from_secs(10),
            does: "runs `spin` with its stdin a pipe the checker writes to, a few bytes at a time with pauses, then closes",
            expects: "fd 0 in O_NONBLOCK mode, every chunk printed as it comes, reads that found nothing counted as EAGAIN, and end of file only once the checker closes the pipe",
            hints: &[
                "`set_nonblocking`: read the flags with `fcntl(fd, F_GETFL)`, add `OFlag::O_NONBLOCK`, write them back with `F_SETFL` (it replaces all the flags).",
                "`read_some`: `nix::unistd::read` returns Ok(0) at end of file, Ok(n) with data, and Err(EAGAIN) when the pipe is empty but still has a writer: that is `Read::WouldBlock`, not an error and not the end. Retry on EINTR.",
            ],
            max_procs: 4,
            run: nonblocking_read,
        },
        Scenario {
            name: "mux-select",
            points: 3,
            limit: Duration::from_secs(15),
            does: "runs `mux select 3 4 ...` on 3 or 4 pipes whose write ends the checker holds; it writes lines on each at its own pace (some in halves, some two at once), then closes them one by one",
            expects: "each line printed within 500 ms as `fd N: TEXT`, `fd N: eof` for each closed pipe while the others go on, `all done` at the end, the program asleep in select() between messages, and under 5% CPU",
            hints: &[
                "`multiplex`: watch every source, then loop while some are open: `wait`, read each ready source once with `read_some`, report its complete lines, and on `Read::Eof` unwatch it and report `Event::Eof`.",
                "`SelectWaiter::wait`: `select` overwrites the `FdSet` with the answer, so build the set again before every call; a closed pipe shows up as readable.",
                "A read gives whatever the pipe holds, maybe half a line: keep one `given::Lines` per source and report only the lines it hands back.",
            ],
            max_procs: 4,
            run: mux_select,
        },
        Scenario {
            name: "mux-poll",
            points: 3,
            limit: Duration::from_secs(15),
            does: "the same conversation with `mux poll 3 4 ...`",
            expects: "the same lines, on time, with the program asleep in poll() between messages and under 5% CPU",
            hints: &[
                "`PollWaiter`: keep a `Vec<PollFd>` with `POLLIN` for each watched descriptor and its token beside it; `poll` returns how many entries have `revents`.",
                "A pipe whose writers are gone reports POLLHUP, without POLLIN once it is empty. Treat POLLIN, POLLHUP and POLLERR as ready, so the loop reads the 0 that means end of file.",
            ],
            max_procs: 4,
            run: mux_poll,
        },
        Scenario {
            name: "mux-epoll",
            points: 3,
            limit: Duration::from_secs(15),
            does: "the same conversation with `mux epoll 3 4 ...`",
            expects: "the same lines, on time, with the program asleep in epoll_wait() between messages and under 5% CPU",
            hints: &[
                "`EpollWaiter`: `Epoll::new(EPOLL_CLOEXEC)` once; `add` each descriptor with `EpollEvent::new(EPOLLIN, token as u64)`; `wait` fills the first n events, and `data()` gives the token back.",
                "EPOLLHUP comes whether you ask for it or not: a ready event with EPOLLHUP and no EPOLLIN is the end of file, so report it as ready. `delete` the descriptor once it has ended.",
            ],
            max_procs: 4,
            run: mux_epoll,
        },
        Scenario {
            name: "mux-traffic",
            points: 3,
            limit: Duration::from_secs(30),
            does: "for each backend: one line longer than any read buffer in one write; then 3 pipes talking at once, in pieces cut at random bytes with pauses, with bursts, lines of up to 9 KB, characters of several bytes and tabs; one pipe ends with a line that has no newline",
            expects: "every line of every pipe printed whole, in its pipe's order, the line without a newline too, each pipe's `eof` after its lines, and `all done`",
            hints: &[
                "A wake-up means a read will not block, not that a whole line is there: push every read into the source's own `Lines` and print what it hands back; at end of file, `finish` gives the last line if it had no newline.",
                "Level-triggered waiting (the default) reports a pipe again while data is left in it. With EPOLLET, read each ready pipe until EAGAIN, or the rest waits for the next write.",
            ],
            max_procs: 4,
            run: mux_traffic,
        },
        Scenario {
            name: "timeout",
            points: 2,
            limit: Duration::from_secs(15),
            does: "runs `mux B --timeout T 3 4` for each backend B, sends one line, then stays quiet for about 2 T before sending more",
            expects: "`timeout: nothing for T ms` no sooner than T ms after the last line and within T + 500 ms, then again T ms later, and the program still reading afterwards",
            hints: &[
                "Give the timeout to every `wait`. When it returns `Woke::TimedOut`, report `Event::Timeout` and go round the loop again: a quiet spell is not the end.",
                "The units differ: poll and epoll_wait take milliseconds (an i32; -1 waits for ever), select a `TimeVal`. `given::millis_rounded_up` and `given::time_left` help.",
            ],
            max_procs: 4,
            run: timeout,
        },
    ],
    fixtures: &[
        Fixture {
            name: "eagain-is-eof",
            caught_by: "nonblocking-read",
            says: "EAGAIN",
        },
        Fixture {
            name: "busy-loop",
            caught_by: "mux-select",
            says: "busy-waiting",
        },
        Fixture {
            name: "stops-at-first-eof",
            caught_by: "mux-select",
            says: "first end of file",
        },
        Fixture {
            name: "select-set-not-rebuilt",
            caught_by: "mux-select",
            says: "build them again",
        },
        Fixture {
            name: "prints-partial-lines",
            caught_by: "mux-select",
            says: "part of a line",
        },
        Fixture {
            name: "poll-ignores-hup",
            caught_by: "mux-poll",
            says: "POLLHUP",
        },
        Fixture {
            name: "never-unwatches",
            caught_by: "mux-poll",
            says: "busy-waiting",
        },
        Fixture {
            name: "epoll-ignores-hup",
            caught_by: "mux-epoll",
            says: "EPOLLHUP",
        },
        Fixture {
            name: "timeout-never-reported",
            caught_by: "timeout",
            says: "timeout",
        },
        Fixture {
            name: "select-deadline-kept",
            caught_by: "timeout",
            says: "not given the whole timeout again",
        },
        Fixture {
            name: "naps-between-reads",
            caught_by: "mux-select",
            says: "it polls",
        },
        Fixture {
            name: "naps-a-microsecond",
            caught_by: "mux-epoll",
            says: "busy-waiting",
        },
        Fixture {
            name: "one-lines-for-all",
            caught_by: "mux-poll",
            says: "lines of two pipes got mixed",
        },
        Fixture {
            name: "epoll-edge-reads-once",
            caught_by: "mux-traffic",
            says: "EPOLLET",
        },
        Fixture {
            name: "drops-unterminated-last-line",
            caught_by: "mux-traffic",
            says: "had no newline",
        },
    ],
    variants: &[
        Variant {
            name: "edge-triggered-small-buffer",
            design: "epoll edge-triggered (EPOLLET), every ready source read until EAGAIN, with a 100-byte buffer",
        },
        Variant {
            name: "raw-libc-poll",
            design: "libc::poll on an array of struct pollfd, any revents taken as ready",
        },
    ],
};

/// How long a line may take to come out after the checker wrote it.
const LATENCY: Duration = Duration::from_millis(500);
/// The most CPU a program may use while it waits, as a share of wall time.
const IDLE_SHARE: f64 = 0.05;
/// The CPU share above which a program that misses a line is spinning.
const SPINNING_SHARE: f64 = 0.25;
/// The shortest stretch over which the CPU share is measured.
const CPU_WINDOW: Duration = Duration::from_millis(1000);
/// `O_NONBLOCK` in the flags of `/proc/PID/fdinfo/FD`.
const O_NONBLOCK: u32 = 0o4000;

const WORDS: &[&str] = &[
    "amber", "basil", "cedar", "delta", "ember", "fjord", "grain", "haiku", "indigo", "juniper",
    "kelp", "lotus", "maple", "nectar", "opal", "pepper", "quartz", "raven", "sage", "tulip",
    "umber", "violet", "willow", "yarrow", "zinnia",
];

/// A fresh message: a word and a number, different every run.
fn word(run: &mut Run) -> String {
    let w = WORDS.choose(&mut run.rng).copied().unwrap_or("word");
    format!("{w}-{}", run.rng.random_range(100..1000))
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// The system calls a program may sleep in while it waits, by backend.
fn family(backend: &str) -> &'static [&'static str] {
    match backend {
        "select" => &["select", "pselect6"],
        "poll" => &["poll", "ppoll"],
        _ => &["epoll_wait", "epoll_pwait", "epoll_pwait2"],
    }
}

/// Calls that mean "asleep, waiting": any backend's, or a plain sleep.
fn is_waiting_call(name: &str) -> bool {
    ["select", "poll", "epoll"]
        .iter()
        .any(|b| family(b).contains(&name))
        || matches!(name, "nanosleep" | "clock_nanosleep" | "read")
}

/// One sentence on where `pid` is right now.
fn where_is(pid: Pid) -> String {
    let procs = procfs::descendants(checker_pid());
    match procs.iter().find(|s| s.pid == pid) {
        Some(s) => diagnose::where_blocked(s, &procs, pid, checker_pid()),
        None => format!("the program (pid {pid}) has exited"),
    }
}

fn list(fds: &[usize]) -> String {
    let names: Vec<String> = fds.iter().map(usize::to_string).collect();
    match names.as_slice() {
        [] => "none".into(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
