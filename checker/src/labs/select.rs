//! Lab 04 — non-blocking I/O, and select, poll and epoll.
//!
//! The checker plays every producer. It creates the pipes, hands their read
//! ends to `mux` as descriptors 3, 4, ..., keeps the write ends, and writes
//! each message itself at moments it picks at random. It times how soon each
//! line comes out, looks in /proc for the call the program sleeps in between
//! messages, and compares the program's CPU time with the wall time.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::unistd::pipe2;
use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};

use crate::diagnose;
use crate::labs::Lab;
use crate::process::{Proc, Waited};
use crate::procfs;
use crate::sandbox::checker_pid;
use crate::scenario::{Failure, Fixture, Outcome, Run, Scenario};
use crate::usage::Usage;

pub static LAB: Lab = Lab {
    number: 4,
    slug: "nonblocking-select",
    title: "Non-blocking I/O: select, poll and epoll",
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
    ],
    variants: &[],
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

// ---------------------------------------------------------------------------
// spin: one non-blocking read in a loop

fn nonblocking_read(run: &mut Run) -> Outcome {
    let mut p = run.spawn("spin", &[])?;
    let pid = p.pid;

    // The flag is on the open file description of fd 0: /proc shows it.
    let flagged = run.poll(Duration::from_secs(3), || {
        let gone = procfs::stat(pid).is_none_or(|s| s.is_zombie());
        match procfs::fd_flags(pid, 0) {
            Some(f) if f & O_NONBLOCK != 0 => Some(true),
            _ if gone => Some(false),
            _ => None,
        }
    });
    match flagged {
        Some(true) => {}
        Some(false) => {
            let until = (Instant::now() + Duration::from_secs(1)).min(run.deadline);
            if let Ok(Some(line)) = p.next_line(until)
                && line.text.starts_with("eof after")
            {
                return Err(eagain_is_not_eof(
                    "a `read N bytes: ...` line for each chunk the checker writes",
                    &line.text,
                ));
            }
            return Err(Failure::wrong(
                "`spin` to put its stdin in non-blocking mode and read it",
                "it exited before the checker wrote anything",
            ));
        }
        None => {
            return Err(Failure::wrong(
                "fd 0 of `spin` to have the O_NONBLOCK flag",
                format!("after 3 s, /proc/{pid}/fdinfo/0 still shows no O_NONBLOCK"),
            )
            .because("set_nonblocking must read the flags with fcntl(F_GETFL), add O_NONBLOCK, and set them with F_SETFL"));
        }
    }

    let chunks = run.rng.random_range(4..=6);
    for _ in 0..chunks {
        let gap = run.rng.random_range(80..=160);
        run.pause(Duration::from_millis(gap));
        let text = word(run);
        let sent = Instant::now();
        p.write_stdin(text.as_bytes())
            .map_err(|_| spin_gone(run, &mut p))?;
        let mut got = String::new();
        while got.len() < text.len() {
            let wanted = format!("`read {} bytes: \"{text}\"`", text.len());
            let line = match p.next_line((sent + LATENCY).min(run.deadline)) {
                Ok(Some(line)) => line.text,
                Ok(None) => return Err(spin_gone(run, &mut p)),
                Err(Waited::TimedOut) => {
                    return Err(Failure::wrong(
                        format!("{wanted} within {} ms", ms(LATENCY)),
                        format!("nothing in {} ms", ms(sent.elapsed())),
                    )
                    .because(where_is(pid)));
                }
            };
            if line.starts_with("eof after") {
                return Err(eagain_is_not_eof(&wanted, &line));
            }
            let Some(chunk) = line
                .strip_prefix("read ")
                .and_then(|l| l.split_once(" bytes: \""))
                .and_then(|(n, rest)| Some((n.parse::<usize>().ok()?, rest.strip_suffix('"')?)))
                .filter(|(n, chunk)| *n == chunk.len())
                .map(|(_, chunk)| chunk.to_string())
            else {
                return Err(Failure::wrong(wanted, format!("`{line}`")));
            };
            got.push_str(&chunk);
            if !text.starts_with(&got) {
                return Err(Failure::wrong(wanted, format!("`{line}`")));
            }
        }
    }

    p.close_stdin();
    let summary = run
        .line(&mut p, "`eof after R reads, E of them EAGAIN`")?
        .text;
    let counts: Vec<u64> = summary
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    match (summary.starts_with("eof after"), counts.as_slice()) {
        (true, [reads, empty]) if *empty >= 1 && reads > empty => {}
        (true, [_, 0]) => {
            return Err(Failure::wrong(
                "some reads to find the pipe empty (EAGAIN) while the checker paused",
                format!("`{summary}`"),
            )
            .because("read_some never returned Read::WouldBlock: with O_NONBLOCK set, a read of an empty pipe fails with EAGAIN"));
        }
        _ => {
            return Err(Failure::wrong(
                "`eof after R reads, E of them EAGAIN`",
                format!("`{summary}`"),
            ));
        }
    }
    run.line(&mut p, "the `cpu ...` line")?;
    run.expect_success(&mut p)
}

fn eagain_is_not_eof(wanted: &str, line: &str) -> Failure {
    Failure::wrong(wanted.to_string(), format!("`{line}`")).because(
        "read_some reported end of file while the checker still held the write end open. \
         EAGAIN means \"nothing yet, come back later\"; only a read that returns 0 bytes is the end",
    )
}

/// `spin` closed its output or its stdin early.
fn spin_gone(run: &Run, p: &mut Proc) -> Failure {
    let until = (Instant::now() + Duration::from_secs(1)).min(run.deadline);
    let exit = p
        .wait(until)
        .map(|e| e.to_string())
        .unwrap_or_else(|_| "still running".into());
    Failure::wrong(
        "`spin` to read until the checker closes the pipe",
        format!("it stopped early ({exit})"),
    )
    .because(
        "EAGAIN is not an error and not the end: it means the pipe is empty for now. \
         read_some must turn it into Read::WouldBlock",
    )
}

/// One sentence on where `pid` is right now.
fn where_is(pid: i32) -> String {
    let procs = procfs::descendants(checker_pid());
    match procs.iter().find(|s| s.pid == pid) {
        Some(s) => diagnose::where_blocked(s, &procs, pid, checker_pid()),
        None => format!("the program (pid {pid}) has exited"),
    }
}

// ---------------------------------------------------------------------------
// mux: the checker plays the producers

fn mux_select(run: &mut Run) -> Outcome {
    conversation(run, "select")
}

fn mux_poll(run: &mut Run) -> Outcome {
    conversation(run, "poll")
}

fn mux_epoll(run: &mut Run) -> Outcome {
    conversation(run, "epoll")
}

/// What the checker waits for, to explain a line that did not come.
#[derive(Clone, Copy)]
enum Awaited {
    Line { source: usize },
    Eof { source: usize },
    Done,
}

/// A running `mux` and the write ends of its pipes.
struct Talk {
    p: Proc,
    backend: &'static str,
    /// Write end of the pipe the program reads as fd 3 + i; `None` once closed.
    writers: Vec<Option<File>>,
    /// The program's CPU use when the checker last wrote or closed.
    mark: Usage,
    /// Where the CPU share is measured from (the first end of file).
    window: Option<Usage>,
    /// The calls the program was found sleeping in between messages.
    seen: Vec<&'static str>,
    eofs: Vec<usize>,
    /// Every line the checker wrote.
    texts: Vec<String>,
    /// Pause between two steps, in milliseconds.
    gaps: (u64, u64),
    /// Skip `timeout:` lines while waiting for others.
    skip_timeouts: bool,
}

fn fd(source: usize) -> usize {
    3 + source
}

impl Talk {
    fn start(
        run: &mut Run,
        backend: &'static str,
        n: usize,
        timeout: Option<u64>,
    ) -> Result<Talk, Failure> {
        let mut readers = Vec::new();
        let mut writers = Vec::new();
        for _ in 0..n {
            let (r, w) =
                pipe2(OFlag::O_CLOEXEC).map_err(|e| Failure::internal(format!("pipe2: {e}")))?;
            readers.push(r);
            writers.push(Some(File::from(w)));
        }
        let mut args = vec![backend.to_string()];
        if let Some(t) = timeout {
            args.extend(["--timeout".to_string(), t.to_string()]);
        }
        args.extend((0..n).map(|i| fd(i).to_string()));
        let fds: Vec<BorrowedFd<'_>> = readers.iter().map(|r| r.as_fd()).collect();
        let p = run.spawn_with_fds("mux", &args, &fds)?;
        // The program holds the read ends now; the checker only writes.
        drop(fds);
        drop(readers);
        let mark = Usage::of(p.pid);
        Ok(Talk {
            p,
            backend,
            writers,
            mark,
            window: None,
            seen: Vec::new(),
            eofs: Vec::new(),
            texts: Vec::new(),
            gaps: (100, 200),
            skip_timeouts: false,
        })
    }

    /// Remembers the time and the program's CPU use.
    fn set_mark(&mut self) {
        self.mark = Usage::of(self.p.pid);
    }

    /// A pause of the checker's choosing, then a look at where the
    /// program sleeps.
    fn gap(&mut self, run: &mut Run) {
        let ms = run.rng.random_range(self.gaps.0..=self.gaps.1);
        run.pause(Duration::from_millis(ms));
        if let Some((nr, _)) = procfs::blocked(self.p.pid).syscall
            && let Some(name) = diagnose::syscall_name(nr)
        {
            self.seen.push(name);
        }
    }

    fn write(&mut self, run: &Run, source: usize, bytes: &str) -> Result<Instant, Failure> {
        self.set_mark();
        let sent = Instant::now();
        let result = match self.writers[source].as_mut() {
            Some(w) => w.write_all(bytes.as_bytes()),
            None => Ok(()),
        };
        match result {
            Ok(()) => Ok(sent),
            Err(_) => Err(self.ended(run, &format!("the program to read fd {}", fd(source)))),
        }
    }

    /// Writes one line on `source` and expects it printed.
    fn send(&mut self, run: &mut Run, source: usize) -> Result<Instant, Failure> {
        let text = word(run);
        self.texts.push(text.clone());
        let sent = self.write(run, source, &format!("{text}\n"))?;
        self.expect(
            run,
            &format!("fd {}: {text}", fd(source)),
            sent,
            Awaited::Line { source },
        )?;
        Ok(sent)
    }

    /// Half a line on `a`, a whole line on `b`, then the rest of `a`'s.
    fn halves(&mut self, run: &mut Run, a: usize, b: usize) -> Outcome {
        let text = word(run);
        self.texts.push(text.clone());
        let (head, tail) = text.split_at(text.len() / 2);
        self.write(run, a, head)?;
        // A gate, not a sleep: go on once the program has read the half.
        if let Some(w) = &self.writers[a] {
            run.poll(LATENCY, || (unread(w) == Some(0)).then_some(()));
        }
        self.send(run, b)?;
        let sent = self.write(run, a, &format!("{tail}\n"))?;
        self.expect(
            run,
            &format!("fd {}: {text}", fd(a)),
            sent,
            Awaited::Line { source: a },
        )?;
        Ok(())
    }

    /// Two lines in one write.
    fn burst(&mut self, run: &mut Run, source: usize) -> Outcome {
        let (one, two) = (word(run), word(run));
        self.texts.extend([one.clone(), two.clone()]);
        let sent = self.write(run, source, &format!("{one}\n{two}\n"))?;
        for text in [one, two] {
            self.expect(
                run,
                &format!("fd {}: {text}", fd(source)),
                sent,
                Awaited::Line { source },
            )?;
        }
        Ok(())
    }

    /// Closes the write end of `source` and expects its end of file.
    fn close(&mut self, run: &Run, source: usize) -> Outcome {
        self.set_mark();
        let sent = Instant::now();
        self.writers[source] = None;
        self.expect(
            run,
            &format!("fd {}: eof", fd(source)),
            sent,
            Awaited::Eof { source },
        )?;
        self.eofs.push(source);
        // The CPU is measured from the first end of file on: a loop that
        // spins spins by then, be it from the start or over a pipe that
        // has ended and is still watched.
        if self.window.is_none() {
            self.window = Some(Usage::of(self.p.pid));
        }
        Ok(())
    }

    fn open_fds(&self) -> Vec<usize> {
        (0..self.writers.len())
            .filter(|&i| self.writers[i].is_some())
            .map(fd)
            .collect()
    }

    /// The next line must be `wanted`, within LATENCY of `since`.
    fn expect(
        &mut self,
        run: &Run,
        wanted: &str,
        since: Instant,
        awaited: Awaited,
    ) -> Result<Instant, Failure> {
        loop {
            let until = (since + LATENCY).min(run.deadline);
            match self.p.next_line(until) {
                Ok(Some(line)) if line.text == wanted => return Ok(Instant::now()),
                Ok(Some(line)) if self.skip_timeouts && line.text.starts_with("timeout:") => {}
                Ok(Some(line)) => return Err(self.mismatch(wanted, &line.text, awaited)),
                Ok(None) => return Err(self.ended(run, &format!("`{wanted}`"))),
                Err(Waited::TimedOut) if Instant::now() >= run.deadline => {
                    return Err(run.timed_out(&format!("`{wanted}`")));
                }
                Err(Waited::TimedOut) => return Err(self.late(wanted, since, awaited)),
            }
        }
    }

    /// The program printed something else than `wanted`.
    fn mismatch(&self, wanted: &str, got: &str, awaited: Awaited) -> Failure {
        let failure = Failure::wrong(format!("`{wanted}`"), format!("`{got}`"));
        // `fd N: eof` for a pipe the checker still holds open.
        if let Some(n) = got
            .strip_prefix("fd ")
            .and_then(|r| r.strip_suffix(": eof"))
            .and_then(|n| n.parse::<usize>().ok())
            && self.open_fds().contains(&n)
        {
            return failure.because(format!(
                "it reported end of file on fd {n}, whose write end the checker still holds open. \
                 A read that finds the pipe empty fails with EAGAIN (nothing yet); only a read of 0 bytes is the end"
            ));
        }
        // It stopped after an end of file, and says so.
        if got == "all done" && !self.eofs.is_empty() {
            return self.stopped_early(failure);
        }
        // Part of a line: `fd N: TE` for `fd N: TEXT`, or `fd N: XT`.
        let partial = |t: &str| {
            self.texts.iter().any(|full| {
                full != t && !t.is_empty() && (full.starts_with(t) || full.ends_with(t))
            })
        };
        if let (Some((gfd, gtext)), Awaited::Line { .. }) = (got.split_once(": "), awaited)
            && gfd.starts_with("fd ")
            && partial(gtext)
        {
            return failure.because(
                "it printed part of a line. One read returns whatever the pipe holds at that moment, \
                 maybe half a line or two lines: keep each source's bytes in its own given::Lines and \
                 report only the complete lines it hands back",
            );
        }
        if got.starts_with("timeout:") {
            return failure.because("it reported a timeout, but `mux` was started without --timeout: wait(None) must wait for as long as it takes");
        }
        failure
    }

    /// `wanted` did not come within LATENCY.
    fn late(&self, wanted: &str, since: Instant, awaited: Awaited) -> Failure {
        let spent = Usage::of(self.p.pid).since(&self.mark);
        let (cpu, wall) = (spent.cpu, spent.wall);
        let failure = Failure::wrong(
            format!("`{wanted}` within {} ms", ms(LATENCY)),
            format!("nothing came in {} ms", ms(since.elapsed())),
        );
        let spinning = spent.cpu_share() > SPINNING_SHARE || spent.never_slept();
        let usage = format!(
            "the program used {} ms of CPU in those {} ms",
            ms(cpu),
            ms(wall)
        );
        let why = match awaited {
            Awaited::Eof { source } if spinning => format!(
                "busy-waiting: the checker closed the write end of fd {fd}, and {usage} without reporting \
                 the end of file. A pipe with no writer left is ready at once, every time: select marks it \
                 readable, poll reports POLLHUP and epoll EPOLLHUP (with no POLLIN/EPOLLIN once it is empty). \
                 A waiter that keeps only POLLIN/EPOLLIN drops that event, so the loop wakes, reads nothing and \
                 waits again at once. Count POLLHUP/EPOLLHUP and POLLERR/EPOLLERR as ready, and read the 0 \
                 that means end of file",
                fd = fd(source)
            ),
            Awaited::Eof { source } => format!(
                "the checker closed the write end of fd {fd}, so a read on it returns 0: end of file. \
                 Meanwhile {}. A closed pipe is ready (readable for select, POLLHUP/EPOLLHUP for poll \
                 and epoll): read it, and report Event::Eof when read returns 0",
                where_is(self.p.pid),
                fd = fd(source)
            ),
            Awaited::Line { source } if spinning => format!(
                "busy-waiting: {usage} and still did not print the line waiting in fd {}",
                fd(source)
            ),
            Awaited::Line { source } => {
                let place = where_is(self.p.pid);
                let asleep_in_wait = [
                    "select()",
                    "poll()",
                    "epoll_wait()",
                    "epoll_pwait()",
                    "pselect6()",
                    "ppoll()",
                ]
                .iter()
                .any(|c| place.contains(c));
                if asleep_in_wait {
                    let select_note = if self.backend == "select" {
                        " select overwrites its sets with the answer: build them again before every call"
                    } else {
                        ""
                    };
                    format!(
                        "{place}, although fd {fd} has a line for it: is fd {fd} still among the descriptors \
                         it waits for?{select_note}",
                        fd = fd(source),
                    )
                } else {
                    format!(
                        "{place}, while the line waits in fd {}. A read on one pipe blocks even when another \
                         has data: wait for all of them at once (select, poll or epoll) and read only the ready ones",
                        fd(source)
                    )
                }
            }
            Awaited::Done => format!(
                "every pipe has ended, but the program did not say `all done`: {}",
                where_is(self.p.pid)
            ),
        };
        failure.because(why)
    }

    /// The program closed its output or its pipes: it has exited.
    fn ended(&mut self, run: &Run, wanted: &str) -> Failure {
        let until = (Instant::now() + Duration::from_secs(1)).min(run.deadline);
        let exit = self
            .p
            .wait(until)
            .map(|e| format!("exited with {e}"))
            .unwrap_or_else(|_| "closed its output".into());
        let open = self.open_fds();
        let failure = Failure::wrong(
            wanted.to_string(),
            format!(
                "the program {exit} while fd {} still had writers",
                list(&open)
            ),
        );
        if self.eofs.is_empty() {
            failure
        } else {
            self.stopped_early(failure)
        }
    }

    fn stopped_early(&self, failure: Failure) -> Failure {
        let first = self.eofs.first().copied().unwrap_or(0);
        failure.because(format!(
            "it stopped after the first end of file (fd {}), while fd {} still had writers. A multiplexer \
             goes on until every source has ended: stop watching the one that ended and keep waiting on the others",
            fd(first),
            list(&self.open_fds())
        ))
    }

    /// The CPU the program used since the first end of file, against wall
    /// time, over at least CPU_WINDOW.
    fn check_cpu(&mut self, run: &Run) -> Outcome {
        let Some(from) = self.window else {
            return Ok(());
        };
        let waited = from.at.elapsed();
        if waited < CPU_WINDOW {
            run.pause(CPU_WINDOW - waited);
        }
        let spent = Usage::of(self.p.pid).since(&from);
        let share = spent.cpu_share();
        if share <= IDLE_SHARE && !spent.never_slept() {
            return Ok(());
        }
        let (cpu, wall) = (spent.cpu, spent.wall);
        let mut happened = format!(
            "it used {} ms of CPU in {} ms ({:.0}%)",
            ms(cpu),
            ms(wall),
            share * 100.0
        );
        if let Some(busy) = spent.busy {
            happened.push_str(&format!(
                ", and was running or waiting for a CPU {:.0}% of that time",
                100.0 * busy.as_secs_f64() / wall.as_secs_f64()
            ));
        }
        Err(Failure::wrong(
            format!(
                "the program to use almost no CPU while it waits for the pipes (under {:.0}% of the wall time)",
                IDLE_SHARE * 100.0
            ),
            happened,
        )
        .because(
            "busy-waiting: the program never sleeps. It goes round a loop of non-blocking reads (or of waits \
             that return at once, e.g. on a pipe that has ended but is still watched) and burns a CPU doing \
             nothing. Sleep in select, poll or epoll until a pipe is ready, and unwatch a pipe once it has ended",
        ))
    }

    /// The program slept in the right call between messages.
    fn check_waits(&self) -> Outcome {
        let expected = family(self.backend);
        let waits: Vec<&str> = self
            .seen
            .iter()
            .copied()
            .filter(|n| is_waiting_call(n))
            .collect();
        if waits.is_empty() {
            // /proc did not say (no permission, or always caught running).
            return Ok(());
        }
        let right = waits.iter().any(|n| expected.contains(n));
        let wrong: Vec<&str> = waits
            .iter()
            .copied()
            .filter(|n| !expected.contains(n))
            .collect();
        if right && wrong.is_empty() {
            return Ok(());
        }
        let mut names: Vec<String> = waits.iter().map(|n| format!("{n}()")).collect();
        names.dedup();
        Err(Failure::wrong(
            format!("`mux {}` to sleep in {}() between messages", self.backend, expected[0]),
            format!("between messages the checker found it in {}", names.join(", ")),
        )
        .because(format!(
            "the {b} backend must wait with {b}: Backend::waiter() makes the {b} waiter, and its wait must call {call}",
            b = self.backend,
            call = expected[0]
        )))
    }
}

/// Bytes written to a pipe and not read yet (FIONREAD works on either end).
fn unread(pipe: &File) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer.
    let r = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(pipe),
            libc::FIONREAD,
            &mut n,
        )
    };
    (r == 0).then_some(n as usize)
}

fn list(fds: &[usize]) -> String {
    let names: Vec<String> = fds.iter().map(usize::to_string).collect();
    match names.as_slice() {
        [] => "none".into(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The checker's producers: each writes at its own pace, some lines come
/// in halves or two at once, and they end one by one.
fn conversation(run: &mut Run, backend: &'static str) -> Outcome {
    let n = run.rng.random_range(3..=4);
    let mut talk = Talk::start(run, backend, n, None)?;

    // Every producer once, in a random order.
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut run.rng);
    for &source in &order {
        talk.gap(run);
        talk.send(run, source)?;
    }
    // Half a line on one pipe, a whole one on another, then the rest.
    order.shuffle(&mut run.rng);
    talk.gap(run);
    talk.halves(run, order[0], order[1])?;
    talk.gap(run);
    talk.burst(run, order[2])?;

    // One producer ends; the others go on.
    let first = order[run.rng.random_range(0..n)];
    talk.gap(run);
    talk.close(run, first)?;
    let mut rest: Vec<usize> = (0..n).filter(|&i| i != first).collect();
    rest.shuffle(&mut run.rng);
    for &source in &rest {
        talk.gap(run);
        talk.send(run, source)?;
    }
    talk.check_cpu(run)?;

    // The others end, one by one.
    rest.shuffle(&mut run.rng);
    for &source in &rest {
        talk.gap(run);
        talk.close(run, source)?;
    }
    let now = Instant::now();
    talk.expect(run, "all done", now, Awaited::Done)?;
    run.expect_success(&mut talk.p)?;
    talk.check_waits()
}

// ---------------------------------------------------------------------------
// timeout

fn timeout(run: &mut Run) -> Outcome {
    let mut backends = ["select", "poll", "epoll"];
    backends.shuffle(&mut run.rng);
    for backend in backends {
        quiet_spells(run, backend)?;
    }
    Ok(())
}

fn quiet_spells(run: &mut Run, backend: &'static str) -> Outcome {
    let t = run.rng.random_range(200..=300u64);
    let period = Duration::from_millis(t);
    let mut talk = Talk::start(run, backend, 2, Some(t))?;
    talk.gaps = (40, 80);
    talk.skip_timeouts = true;
    talk.gap(run);
    let sent = talk.send(run, 0)?;

    // Quiet: the checker writes nothing for a while.
    talk.skip_timeouts = false;
    let wanted = format!("timeout: nothing for {t} ms");
    // Lower bounds count from the write, which the program cannot have
    // seen earlier; upper bounds from the previous line, as the checker saw
    // it (late, if anything). A loaded machine only makes both looser.
    let first = quiet_line(run, &mut talk, &wanted, sent, period, sent, period)?;
    quiet_line(run, &mut talk, &wanted, sent, 2 * period, first, period)?;

    // It still reads afterwards.
    talk.skip_timeouts = true;
    talk.send(run, 1)?;
    talk.close(run, 0)?;
    talk.close(run, 1)?;
    let now = Instant::now();
    talk.expect(run, "all done", now, Awaited::Done)?;
    run.expect_success(&mut talk.p)
}

/// Expects `wanted` no sooner than `least` after `sent` (the checker's last
/// write), and no later than `period` + LATENCY after `since`.
fn quiet_line(
    run: &Run,
    talk: &mut Talk,
    wanted: &str,
    sent: Instant,
    least: Duration,
    since: Instant,
    period: Duration,
) -> Result<Instant, Failure> {
    let until = (since + period + LATENCY).min(run.deadline);
    let backend = talk.backend;
    match talk.p.next_line(until) {
        Ok(Some(line)) if line.text == wanted => {
            let after = sent.elapsed();
            // Measured when the checker saw it: never earlier than printed.
            if after + Duration::from_millis(2) < least {
                return Err(Failure::wrong(
                    format!("`{wanted}` no sooner than {} ms after the last line", ms(least)),
                    format!("it came after {} ms (mux {backend})", ms(after)),
                )
                .because("the wait ended too early: poll and epoll_wait take milliseconds, select a TimeVal (seconds and microseconds); check the conversion"));
            }
            Ok(Instant::now())
        }
        Ok(Some(line)) => Err(Failure::wrong(
            format!("`{wanted}` (mux {backend})"),
            format!("`{}`", line.text),
        )),
        Ok(None) => Err(talk.ended(run, &format!("`{wanted}`")).because(
            "a timeout is not an end: report it and go on waiting for the sources that are still open",
        )),
        Err(_) if Instant::now() >= run.deadline => Err(run.timed_out(wanted)),
        Err(_) => Err(Failure::wrong(
            format!(
                "`{wanted}` about {} ms after the last line, when nothing else came (mux {backend})",
                ms(period)
            ),
            format!("nothing in {} ms", ms(since.elapsed())),
        )
        .because(format!(
            "the timeout was never reported: give the timeout to every wait, and when it returns \
             Woke::TimedOut report Event::Timeout, then wait again. Meanwhile {}",
            where_is(talk.p.pid)
        ))),
    }
}
