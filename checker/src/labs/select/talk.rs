//! `mux`: the checker plays the producers, one pipe each, at its own
//! pace; it times each line, looks where the program sleeps, and measures
//! its CPU and its wake-ups.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::unistd::pipe2;
use rand::Rng;
use rand::seq::SliceRandom;

use super::{
    CPU_WINDOW, IDLE_SHARE, LATENCY, SPINNING_SHARE, family, is_waiting_call, list, ms, where_is,
    word,
};
use crate::diagnose;
use crate::peers::pipe_peer::unread;
use crate::peers::wakeups::{Wakeups, per_second};
use crate::process::{Proc, Waited};
use crate::procfs;
use crate::scenario::{Failure, Outcome, Run};
use crate::usage::Usage;

/// Wake-ups allowed per write or close of the checker's, and the rate
/// above which a program that wakes more often is polling.
const WAKEUPS_PER_WRITE: u64 = 3;
const WAKEUPS_PER_SECOND: f64 = 30.0;

pub(super) fn mux_select(run: &mut Run) -> Outcome {
    conversation(run, "select")
}

pub(super) fn mux_poll(run: &mut Run) -> Outcome {
    conversation(run, "poll")
}

pub(super) fn mux_epoll(run: &mut Run) -> Outcome {
    conversation(run, "epoll")
}

/// What the checker waits for, to explain a line that did not come.
#[derive(Clone, Copy)]
pub(super) enum Awaited {
    Line { source: usize },
    Eof { source: usize },
    Done,
}

/// A running `mux` and the write ends of its pipes.
pub(super) struct Talk {
    pub(super) p: Proc,
    pub(super) backend: &'static str,
    /// Write end of the pipe the program reads as fd 3 + i; `None` once closed.
    pub(super) writers: Vec<Option<File>>,
    /// The program's CPU use when the checker last wrote or closed.
    pub(super) mark: Usage,
    /// Where the CPU share is measured from (the first end of file).
    pub(super) window: Option<Usage>,
    /// The program's wake-ups from the same moment, and the checker's
    /// writes and closes since then.
    pub(super) woken: Option<(Wakeups, u64)>,
    pub(super) writes: u64,
    /// The calls the program was found sleeping in between messages.
    pub(super) seen: Vec<&'static str>,
    pub(super) eofs: Vec<usize>,
    /// Every line the checker wrote.
    pub(super) texts: Vec<String>,
    /// Pause between two steps, in milliseconds.
    pub(super) gaps: (u64, u64),
    /// Skip `timeout:` lines while waiting for others.
    pub(super) skip_timeouts: bool,
}

pub(super) fn fd(source: usize) -> usize {
    3 + source
}

impl Talk {
    pub(super) fn start(
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
            woken: None,
            writes: 0,
            seen: Vec::new(),
            eofs: Vec::new(),
            texts: Vec::new(),
            gaps: (100, 200),
            skip_timeouts: false,
        })
    }

    /// Remembers the time and the program's CPU use.
    pub(super) fn set_mark(&mut self) {
        self.mark = Usage::of(self.p.pid);
    }

    /// A pause of the checker's choosing, then a look at where the
    /// program sleeps.
    pub(super) fn gap(&mut self, run: &mut Run) {
        let ms = run.rng.random_range(self.gaps.0..=self.gaps.1);
        run.pause(Duration::from_millis(ms));
        if let Some((nr, _)) = procfs::blocked(self.p.pid).syscall
            && let Some(name) = diagnose::syscall_name(nr)
        {
            self.seen.push(name);
        }
    }

    pub(super) fn write(
        &mut self,
        run: &Run,
        source: usize,
        bytes: &str,
    ) -> Result<Instant, Failure> {
        self.set_mark();
        let sent = Instant::now();
        self.writes += 1;
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
    pub(super) fn send(&mut self, run: &mut Run, source: usize) -> Result<Instant, Failure> {
        Ok(self.send_seen(run, source)?.0)
    }

    /// Like `send`; also gives when the checker saw the line printed.
    pub(super) fn send_seen(
        &mut self,
        run: &mut Run,
        source: usize,
    ) -> Result<(Instant, Instant), Failure> {
        let text = word(run);
        self.texts.push(text.clone());
        let sent = self.write(run, source, &format!("{text}\n"))?;
        let seen = self.expect(
            run,
            &format!("fd {}: {text}", fd(source)),
            sent,
            Awaited::Line { source },
        )?;
        Ok((sent, seen))
    }

    /// Half a line on `a`, a whole line on `b`, then the rest of `a`'s.
    pub(super) fn halves(&mut self, run: &mut Run, a: usize, b: usize) -> Outcome {
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
    pub(super) fn burst(&mut self, run: &mut Run, source: usize) -> Outcome {
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
    pub(super) fn close(&mut self, run: &Run, source: usize) -> Outcome {
        self.set_mark();
        let sent = Instant::now();
        self.writes += 1;
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
            self.woken = Some((Wakeups::of(self.p.pid), self.writes));
        }
        Ok(())
    }

    pub(super) fn open_fds(&self) -> Vec<usize> {
        (0..self.writers.len())
            .filter(|&i| self.writers[i].is_some())
            .map(fd)
            .collect()
    }

    /// The next line must be `wanted`, within LATENCY of `since`.
    pub(super) fn expect(
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
    pub(super) fn mismatch(&self, wanted: &str, got: &str, awaited: Awaited) -> Failure {
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
        // The start of one source's line glued to another's: one buffer of
        // partial lines for all the sources.
        let glued = |t: &str| {
            self.texts.iter().any(|a| {
                self.texts.iter().any(|b| {
                    a != b
                        && t.len() > b.len()
                        && t.ends_with(b.as_str())
                        && a.starts_with(&t[..t.len() - b.len()])
                })
            })
        };
        if let Some((gfd, gtext)) = got.split_once(": ")
            && gfd.starts_with("fd ")
            && glued(gtext)
        {
            return failure
                .because(
                    "the lines of two pipes got mixed: the start of a line that arrived on one pipe \
                     was glued to a line from another. The bytes of every source went into one \
                     buffer of partial lines; each source needs its own",
                )
                .hint("Keep one given::Lines per source (a Vec<Lines> indexed by token) and push each read into the Lines of the source it came from.");
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
    pub(super) fn late(&self, wanted: &str, since: Instant, awaited: Awaited) -> Failure {
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
    pub(super) fn ended(&mut self, run: &Run, wanted: &str) -> Failure {
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

    pub(super) fn stopped_early(&self, failure: Failure) -> Failure {
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
    pub(super) fn check_cpu(&mut self, run: &Run) -> Outcome {
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
            // It sleeps; but does it wait for the data, or nap and look?
            return self.check_wakeups();
        }
        if !spent.never_slept() {
            // It sleeps, a little at a time: a nap between rounds of reads.
            self.check_wakeups()?;
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

    /// The program woke up about once per write of the checker's, not
    /// hundreds of times a second: a loop that naps between non-blocking
    /// reads sleeps most of the time, yet never waits for the data.
    pub(super) fn check_wakeups(&self) -> Outcome {
        let Some((from, writes_before)) = self.woken else {
            return Ok(());
        };
        let Some((n, over)) = Wakeups::of(self.p.pid).since(&from) else {
            return Ok(());
        };
        let writes = self.writes - writes_before;
        let rate = per_second(n, over);
        if n <= WAKEUPS_PER_WRITE * (writes + 1) + 10 || rate <= WAKEUPS_PER_SECOND {
            return Ok(());
        }
        Err(Failure::wrong(
            format!(
                "the program to sleep until a pipe is ready: about one wake-up per write of the \
                 checker's ({writes} in {} ms)",
                ms(over)
            ),
            format!(
                "it woke up {n} times in {} ms ({rate:.0} a second)",
                ms(over)
            ),
        )
        .because(format!(
            "busy-waiting with naps: it wakes up {rate:.0} times a second while the pipes are \
             quiet: it polls. A loop of \
             non-blocking reads with a short sleep between rounds uses little CPU, yet it never \
             waits for the data: it looks again and again, and a line waits up to a whole nap. \
             Sleep in {}() until a pipe is ready, with no sleep of your own",
            family(self.backend)[0]
        ))
        .hint("In `multiplex`, the only place the loop sleeps is `waiter.wait(timeout)`: no thread::sleep, and no read of a source that the waiter did not report ready."))
    }

    /// The program slept in the right call between messages.
    pub(super) fn check_waits(&self) -> Outcome {
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
