//! Lab 07 — counting semaphores.
//!
//! The checker is the printer: every job, while it prints, is connected to
//! a Unix socket the checker listens on, and stays connected until the
//! checker lets it go. So the checker counts exactly how many jobs print at
//! once (and knows their real pids, from SO_PEERCRED), decides when each
//! one finishes, and sees in /proc that every other job is blocked in
//! sem_wait (a futex) rather than printing. For the bounded buffer, the
//! checker chooses every item, holds the consumers at a gate, and counts
//! what comes out.

use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};

use crate::diagnose::syscall_name;
use crate::labs::Lab;
use crate::process::{Exit, Proc};
use crate::procfs;
use crate::scenario::{Failure, Fixture, Outcome, Run, Scenario};

pub static LAB: Lab = Lab {
    number: 7,
    slug: "semaphores",
    title: "Semaphores: printers, named and unnamed, a bounded buffer",
    scenarios: &[
        Scenario {
            name: "printer-pool",
            points: 3,
            limit: Duration::from_secs(15),
            does: "runs `pool JOBS PRINTERS` (7 jobs and 3 printers, or close): the checker is the printer, and decides when each job has finished printing",
            expects: "never more jobs printing than printers, all printers busy whenever jobs wait, every job printed once by a child process, and the program to exit with 0",
            hints: &[
                "Make one semaphore with as many units as printers (`Semaphore::shared(printers)`), then fork every job. A job takes a unit before printing and gives it back after.",
                "`Semaphore::shared` maps memory shared with the children (`given::Shared`) and calls `libc::sem_init(ptr, 1, value)`: pshared = 1, or the children each get a semaphore of their own.",
                "`wait` is `libc::sem_wait` in a loop that goes round again on EINTR; `post` is `libc::sem_post`. `acquire` waits and returns a Permit whose Drop posts.",
            ],
            max_procs: 16,
            run: printer_pool,
        },
        Scenario {
            name: "named-printers",
            points: 3,
            limit: Duration::from_secs(15),
            does: "runs `spool PRINTERS`, which creates a named semaphore, then starts `job N` programs one at a time (unrelated processes that open it by name) and lets them finish in a random order",
            expects: "a named semaphore under LAB_IPC_PREFIX while the spool runs, a job to say `every printer is busy` exactly when try_wait finds no printer, never more jobs printing than printers, and no semaphore left once the spool has exited",
            hints: &[
                "`Semaphore::create` is `libc::sem_open(name, O_CREAT | O_EXCL, 0o600, value)`, `open` is `sem_open(name, 0)`; both fail with `SEM_FAILED`, and the cause is in errno.",
                "`try_wait` is `libc::sem_trywait`: it fails with EAGAIN when the count is zero, which is `Ok(false)`, not an error.",
                "The name outlives every process until someone calls `sem_unlink`: the creator's Drop must close (`sem_close`) and unlink it, a handle from `open` only closes it.",
            ],
            max_procs: 24,
            run: named_printers,
        },
        Scenario {
            name: "full-buffer-blocks",
            points: 2,
            limit: Duration::from_secs(10),
            does: "runs `buffer CAPACITY 2 2` with a small capacity and more items than fit, holding the consumers at a gate",
            expects: "the producers to block in sem_wait while the buffer is full (nothing overwritten), then, once the consumers go, every item taken exactly once",
            hints: &[
                "A bounded buffer needs two counting semaphores: `empty` (free slots, starts at the capacity) and `full` (items, starts at 0).",
                "`put` waits on `empty`, writes the slot, then posts `full`; `take` waits on `full`, reads the slot, then posts `empty`.",
            ],
            max_procs: 16,
            run: full_buffer_blocks,
        },
        Scenario {
            name: "buffer-under-stress",
            points: 3,
            limit: Duration::from_secs(30),
            does: "runs `buffer CAPACITY 4 4` three times: 4 producers put about 130 000 messages chosen by the checker, 4 consumers take them at the same time, and the checker pauses running processes at random moments",
            expects: "every item taken exactly once: none lost, none taken twice, none made up",
            hints: &[
                "Several producers (and several consumers) change `tail` (and `head`) at the same time: read the index, use the slot and move the index on while holding a third semaphore, the mutex, that starts at 1.",
                "Hold the mutex only around the slot and the index, never while waiting on `empty` or `full`: a producer that sleeps holding the mutex keeps every consumer out.",
            ],
            max_procs: 16,
            run: buffer_under_stress,
        },
    ],
    fixtures: &[
        Fixture {
            name: "never-posted",
            caught_by: "printer-pool",
            says: "never posted",
        },
        Fixture {
            name: "four-printers",
            caught_by: "printer-pool",
            says: "at once",
        },
        Fixture {
            name: "never-unlinked",
            caught_by: "named-printers",
            says: "sem_unlink",
        },
        Fixture {
            name: "try-wait-blocks",
            caught_by: "named-printers",
            says: "try_wait",
        },
        Fixture {
            name: "put-does-not-wait",
            caught_by: "full-buffer-blocks",
            says: "full",
        },
        Fixture {
            name: "no-mutex",
            caught_by: "buffer-under-stress",
            says: "mutex",
        },
    ],
    variants: &[],
};

/// How long a stuck state must last before the checker calls it stuck. A
/// correct program never shows it at all (a woken process is running, not
/// in futex), so this is only a margin.
const STUCK_FOR: Duration = Duration::from_millis(300);

/// Whether `pid` is asleep in futex(), where sem_wait blocks.
fn in_sem_wait(pid: i32) -> bool {
    let Some(s) = procfs::stat(pid) else {
        return false;
    };
    if s.state != 'S' {
        return false;
    }
    procfs::blocked(pid)
        .syscall
        .is_some_and(|(nr, _)| syscall_name(nr) == Some("futex"))
}

/// Whether `pid` is asleep in `call` (e.g. "wait4", "read").
fn blocked_in(pid: i32, call: &str) -> bool {
    procfs::stat(pid).is_some_and(|s| s.state == 'S')
        && procfs::blocked(pid)
            .syscall
            .is_some_and(|(nr, _)| syscall_name(nr) == Some(call))
}

fn alive(pid: i32) -> bool {
    procfs::stat(pid).is_some_and(|s| !s.is_zombie())
}

/// The live children of `pid`.
fn live_children(pid: i32) -> Vec<i32> {
    procfs::children(pid)
        .into_iter()
        .filter(|&c| alive(c))
        .collect()
}

fn list(pids: &[i32]) -> String {
    let v: Vec<String> = pids.iter().map(i32::to_string).collect();
    v.join(", ")
}

/// The pid of the process at the other end of a Unix socket.
fn peer_pid(stream: &UnixStream) -> Option<i32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are valid for getsockopt to write.
    let r = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(cred.pid)
}

/// A job printing: connected to the checker until the checker drops it.
struct Holder {
    stream: UnixStream,
    pid: i32,
    job: usize,
}

/// The printer room, as the checker plays it.
struct Printers {
    listener: UnixListener,
    printers: usize,
    jobs: usize,
    inside: Vec<Holder>,
    /// (pid, job) of the jobs the checker let finish.
    finished: Vec<(i32, usize)>,
    /// Set when the jobs must be children of this program.
    parent: Option<i32>,
}

impl Printers {
    fn new(run: &Run, printers: usize, jobs: usize, parent: Option<i32>) -> Result<Self, Failure> {
        let path = run.sandbox.tmp.join("printer.sock");
        let listener = UnixListener::bind(&path)
            .map_err(|e| Failure::internal(format!("binding {}: {e}", path.display())))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Failure::internal(format!("non-blocking listener: {e}")))?;
        Ok(Printers {
            listener,
            printers,
            jobs,
            inside: Vec::new(),
            finished: Vec::new(),
            parent,
        })
    }

    fn jobs_inside(&self) -> String {
        let v: Vec<String> = self
            .inside
            .iter()
            .map(|h| format!("job {} (pid {})", h.job, h.pid))
            .collect();
        v.join(", ")
    }

    /// Takes every job that has connected since the last call.
    fn accept_new(&mut self, run: &Run) -> Outcome {
        loop {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::internal(format!("accept: {e}"))),
            };
            let pid = peer_pid(&stream)
                .ok_or_else(|| Failure::internal("SO_PEERCRED on a printer connection"))?;
            let line = read_job_line(run, &stream)?;
            let job = line
                .strip_prefix("job ")
                .and_then(|n| n.trim().parse::<usize>().ok())
                .filter(|&n| n < self.jobs)
                .ok_or_else(|| {
                    Failure::wrong(
                        format!("a job number below {} on the printer", self.jobs),
                        format!("process {pid} sent `{line}`"),
                    )
                })?;
            let again = self
                .finished
                .iter()
                .map(|&(_, j)| j)
                .chain(self.inside.iter().map(|h| h.job))
                .any(|j| j == job);
            if again {
                return Err(Failure::wrong(
                    format!("job {job} printed once"),
                    format!("job {job} came to print a second time (pid {pid})"),
                ));
            }
            if let Some(parent) = self.parent {
                let ppid = procfs::stat(pid).map(|s| s.ppid);
                if pid == parent || ppid != Some(parent) {
                    return Err(Failure::wrong(
                        format!("job {job} to print in a child process of the program ({parent})"),
                        format!("it printed from process {pid}"),
                    )
                    .because(
                        "every job runs in a child process of its own, forked by printer_pool",
                    ));
                }
            }
            self.inside.push(Holder { stream, pid, job });
            if self.inside.len() > self.printers {
                return Err(Failure::wrong(
                    format!("at most {} jobs printing at once", self.printers),
                    format!(
                        "{} jobs printing at once: {}",
                        self.inside.len(),
                        self.jobs_inside()
                    ),
                )
                .because(format!(
                    "the semaphore let more jobs in than there are printers: it must start at \
                     the number of printers ({}), every job must wait on it before printing, and \
                     only a unit that was taken may be posted back (a Permit built by \
                     try_acquire when try_wait took nothing posts one too many on drop)",
                    self.printers
                )));
            }
        }
    }

    /// Waits until as many jobs print as there are printers (or jobs left)
    /// and every other job, among `waiting()`, is blocked in sem_wait.
    /// `ended()` fails if a program the scenario needs has exited.
    fn settle(
        &mut self,
        run: &Run,
        expected_jobs: usize,
        waiting: &mut dyn FnMut(&Printers) -> Vec<i32>,
        ended: &mut dyn FnMut() -> Outcome,
    ) -> Outcome {
        let target = self.printers.min(expected_jobs - self.finished.len());
        let mut stuck_since: Option<Instant> = None;
        loop {
            self.accept_new(run)?;
            let waiters = waiting(self);
            let expected_waiters = expected_jobs - self.finished.len() - self.inside.len();
            let all_waiting = waiters.len() == expected_waiters;
            let blocked = all_waiting && waiters.iter().all(|&p| in_sem_wait(p));
            if blocked && self.inside.len() == target {
                return Ok(());
            }
            let finished_gone = self.finished.iter().all(|&(p, _)| !alive(p));
            if blocked && finished_gone && self.inside.len() < target {
                let since = *stuck_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= STUCK_FOR {
                    return Err(self.stuck(&waiters, target));
                }
            } else {
                stuck_since = None;
            }
            ended()?;
            if Instant::now() >= run.deadline {
                return Err(run
                    .timed_out(&format!(
                        "{target} jobs printing at once and the others waiting in sem_wait"
                    ))
                    .because(format!(
                        "{} printing ({}), {} of {expected_waiters} other jobs seen waiting",
                        self.inside.len(),
                        self.jobs_inside(),
                        waiters.len()
                    )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn stuck(&self, waiters: &[i32], target: usize) -> Failure {
        let happened = format!(
            "{} job(s) printing although {} printer(s) should be busy; the waiting jobs (pids {}) \
             stay blocked in sem_wait",
            self.inside.len(),
            target,
            list(waiters)
        );
        let expected = "a waiting job to start printing as soon as a printer is free";
        if self.finished.is_empty() {
            return Failure::wrong(expected, happened).because(format!(
                "no job had finished yet, so the semaphore started below the number of \
                 printers ({}): it must start with one unit per printer",
                self.printers
            ));
        }
        let done: Vec<String> = self
            .finished
            .iter()
            .map(|(p, j)| format!("job {j} (pid {p})"))
            .collect();
        Failure::wrong(expected, happened).because(format!(
            "{} finished printing and exited, yet their printers never came back: the semaphore \
             was never posted. A job must post it (drop its Permit) once it has printed",
            done.join(", ")
        ))
    }

    /// Lets `k` of the printing jobs, chosen at random, finish.
    fn release(&mut self, run: &mut Run, k: usize) {
        self.inside.shuffle(&mut run.rng);
        for h in self.inside.drain(..k.min(self.inside.len())) {
            self.finished.push((h.pid, h.job));
            drop(h.stream);
        }
    }
}

/// The `job N` line a job sends when it connects.
fn read_job_line(run: &Run, mut stream: &UnixStream) -> Result<String, Failure> {
    let _ = stream.set_nonblocking(false);
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        let left = run.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(run.timed_out("a job to send `job N` on the printer socket"));
        }
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if line.len() < 64 => line.push(byte[0]),
            Ok(_) => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(run.timed_out("a job to send `job N` on the printer socket"));
            }
            Err(e) => return Err(Failure::internal(format!("reading a job's number: {e}"))),
        }
    }
    Ok(String::from_utf8_lossy(&line).trim().to_string())
}

/// Fails if `p` has exited.
fn still_running(p: &mut Proc, what: &str) -> Outcome {
    match p.wait(Instant::now()) {
        Err(_) => Ok(()),
        Ok(exit) => Err(Failure::wrong(
            what.to_string(),
            format!("{} ended first, with {exit}", p.name),
        )),
    }
}

fn printer_pool(run: &mut Run) -> Outcome {
    let printers: usize = run.rng.random_range(2..=3);
    let jobs: usize = run.rng.random_range(7..=8);
    // The printer exists before any job: a job that finds no socket
    // "prints" on its own, as when run by hand.
    let mut room = Printers::new(run, printers, jobs, None)?;
    let mut p = run.spawn("pool", &[jobs.to_string(), printers.to_string()])?;
    let program = p.pid;
    room.parent = Some(program);

    let mut waiting = |room: &Printers| -> Vec<i32> {
        live_children(program)
            .into_iter()
            .filter(|c| {
                !room.inside.iter().any(|h| h.pid == *c) && !room.finished.iter().any(|f| f.0 == *c)
            })
            .collect()
    };
    while room.finished.len() < jobs {
        let mut ended = || still_running(&mut p, "every job to print before the program ends");
        room.settle(run, jobs, &mut waiting, &mut ended)?;
        let k = run.rng.random_range(1..=room.inside.len());
        room.release(run, k);
    }
    let rest = run.rest(&mut p, "the program to finish")?;
    run.expect_success(&mut p)?;
    let wanted = format!("all {jobs} jobs printed on {printers} printers");
    if !rest.iter().any(|l| l.text.trim() == wanted) {
        return Err(Failure::wrong(
            format!("the program to print `{wanted}`"),
            "it did not".to_string(),
        ));
    }
    let left = live_children(program);
    if !left.is_empty() {
        return Err(Failure::wrong(
            "every job reaped",
            format!("jobs {} still there", list(&left)),
        ));
    }
    Ok(())
}

fn named_printers(run: &mut Run) -> Outcome {
    let printers: usize = run.rng.random_range(2..=3);
    let jobs: usize = printers + run.rng.random_range(3..=4);
    let mut spool = run.spawn("spool", &[printers.to_string()])?;
    let ready = run
        .line(&mut spool, "`spool ready: NAME has N printers`")?
        .text;
    if !ready.starts_with("spool ready") {
        return Err(Failure::wrong(
            "`spool ready: NAME has N printers`",
            format!("`{ready}`"),
        ));
    }
    let objects = run.sandbox.ipc_objects();
    let sems: Vec<String> = objects
        .iter()
        .filter_map(|o| o.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("sem."))
        .collect();
    if sems.is_empty() {
        let seen: Vec<String> = objects.iter().map(|o| o.display().to_string()).collect();
        return Err(Failure::wrong(
            format!(
                "a named semaphore /dev/shm/sem.{}printers while the spool runs",
                run.sandbox.ipc_prefix.trim_start_matches('/')
            ),
            if seen.is_empty() {
                "no named IPC object at all".to_string()
            } else {
                format!("only {}", seen.join(", "))
            },
        )
        .because("Semaphore::create must call sem_open with O_CREAT and the name it is given"));
    }

    let mut room = Printers::new(run, printers, jobs, None)?;
    let mut procs: Vec<Proc> = Vec::new();
    let mut pids: Vec<i32> = Vec::new();
    // The jobs started so far that neither print nor have printed.
    let waiting = |pids: &[i32], room: &Printers| -> Vec<i32> {
        pids.iter()
            .copied()
            .filter(|&c| {
                alive(c)
                    && !room.inside.iter().any(|h| h.pid == c)
                    && !room.finished.iter().any(|f| f.0 == c)
            })
            .collect()
    };
    // Start the jobs one at a time: the first ones find a printer free,
    // the others must find none with try_wait.
    for job in 0..jobs {
        let proc = run.spawn("job", &[job.to_string()])?;
        pids.push(proc.pid);
        procs.push(proc);
        {
            let snapshot = pids.clone();
            let mut w = |room: &Printers| waiting(&snapshot, room);
            let mut ended = || {
                for p in procs.iter_mut() {
                    if let Ok(exit) = p.wait(Instant::now()) {
                        return Err(Failure::wrong(
                            "every job to run until the checker lets it finish printing",
                            format!("job program {} ended early, with {exit}", p.pid),
                        ));
                    }
                }
                still_running(&mut spool, "the spool to run until its stdin closes")
            };
            room.settle(run, job + 1, &mut w, &mut ended)?;
        }
        let busy_said = |text: &str| text.contains("every printer is busy");
        let pid = pids[job];
        let capture = run
            .spawned
            .iter()
            .find(|s| s.pid == pid)
            .map(|s| s.stdout.clone())
            .ok_or_else(|| Failure::internal("a job's output"))?;
        if job < printers {
            if busy_said(&capture.text()) {
                return Err(Failure::wrong(
                    format!("job {job} to find a printer free ({job} of {printers} in use)"),
                    "it said every printer is busy".to_string(),
                )
                .because(
                    "try_wait returned false although the count was above zero: \
                     sem_trywait returns 0 when it took a unit",
                ));
            }
        } else {
            let said = run.poll(Duration::from_secs(3), || {
                busy_said(&capture.text()).then_some(())
            });
            if said.is_none() {
                return Err(Failure::wrong(
                    format!(
                        "job {job} to print `job {job}: every printer is busy, waiting` \
                         (all {printers} printers were taken)"
                    ),
                    format!("it printed {:?} and blocked", capture.text().trim()),
                )
                .because(
                    "try_wait must not block: it is sem_trywait, which fails with EAGAIN at \
                     once when the count is zero (Ok(false))",
                ));
            }
        }
    }
    // Then let them finish in a random order.
    while room.finished.len() < jobs {
        let k = run.rng.random_range(1..=room.inside.len());
        room.release(run, k);
        if room.finished.len() == jobs {
            break;
        }
        let snapshot = pids.clone();
        let mut w = |room: &Printers| waiting(&snapshot, room);
        let mut ended = || still_running(&mut spool, "the spool to run until its stdin closes");
        room.settle(run, jobs, &mut w, &mut ended)?;
    }
    for p in procs.iter_mut() {
        run.expect_success(p)?;
    }
    spool.close_stdin();
    run.rest(&mut spool, "the spool to finish")?;
    run.expect_success(&mut spool)?;
    let left = run.sandbox.ipc_objects();
    if !left.is_empty() {
        let names: Vec<String> = left.iter().map(|o| o.display().to_string()).collect();
        return Err(Failure::wrong(
            "no named semaphore left once the spool has exited",
            format!("{} still exists", names.join(", ")),
        )
        .because(
            "a named semaphore lives until someone removes its name, like a file: the creator's \
             Drop must call sem_unlink after sem_close",
        ));
    }
    Ok(())
}

/// The messages the producers put: message `i` of producer `p` is
/// `p{p}-{i}-` and then hex digits, up to a random length of at most the
/// buffer's 64 bytes. The digits come from a keyed hash of (p, i), so the
/// checker tells a real message from a torn or made-up one without
/// keeping them all.
struct Messages {
    key: u64,
    producers: usize,
    per_producer: usize,
}

/// SplitMix64: a cheap, good mixing of 64 bits.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Messages {
    fn new(run: &mut Run, producers: usize, per_producer: usize) -> Messages {
        Messages {
            key: run.rng.random(),
            producers,
            per_producer,
        }
    }

    fn total(&self) -> usize {
        self.producers * self.per_producer
    }

    fn message(&self, p: usize, i: usize) -> String {
        use std::fmt::Write;
        let mut h = mix(self.key ^ ((p as u64) << 40) ^ i as u64);
        let mut m = format!("p{p}-{i}-");
        let len = m.len() + 1 + (h % (64 - m.len() as u64)) as usize;
        while m.len() < len {
            h = mix(h);
            let _ = write!(m, "{h:016x}");
        }
        m.truncate(len);
        m
    }

    /// Writes `items-P.txt` for every producer.
    fn write(&self, run: &Run) -> Outcome {
        for p in 0..self.producers {
            let mut text = String::with_capacity(self.per_producer * 40);
            for i in 0..self.per_producer {
                text.push_str(&self.message(p, i));
                text.push('\n');
            }
            let path = run.sandbox.tmp.join(format!("items-{p}.txt"));
            std::fs::write(&path, text)
                .map_err(|e| Failure::internal(format!("writing {}: {e}", path.display())))?;
        }
        Ok(())
    }

    /// Which message `line` is, if it is one.
    fn index(&self, line: &str) -> Option<usize> {
        let mut parts = line.strip_prefix('p')?.splitn(3, '-');
        let p: usize = parts.next()?.parse().ok()?;
        let i: usize = parts.next()?.parse().ok()?;
        (p < self.producers && i < self.per_producer && self.message(p, i) == line)
            .then_some(p * self.per_producer + i)
    }

    fn name(&self, index: usize) -> String {
        self.message(index / self.per_producer, index % self.per_producer)
    }
}

/// Compares what the consumers took with what was sent.
fn check_taken(run: &Run, consumers: usize, sent: &Messages, why_wrong: &str) -> Outcome {
    let mut counts = vec![0u32; sent.total()];
    let mut made_up = Vec::new();
    let mut taken_total = 0usize;
    for c in 0..consumers {
        let path = run.sandbox.tmp.join(format!("taken-{c}.txt"));
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Failure::wrong(
                format!("consumer {c} to write taken-{c}.txt"),
                format!("reading it failed: {e}"),
            )
        })?;
        for line in text.lines().filter(|l| !l.is_empty()) {
            taken_total += 1;
            match sent.index(line) {
                Some(k) => counts[k] += 1,
                None => made_up.push(line.to_string()),
            }
        }
    }
    let lost: Vec<usize> = (0..counts.len()).filter(|&k| counts[k] == 0).collect();
    let twice: Vec<usize> = (0..counts.len()).filter(|&k| counts[k] > 1).collect();
    if lost.is_empty() && twice.is_empty() && made_up.is_empty() {
        return Ok(());
    }
    let mut parts = Vec::new();
    if !lost.is_empty() {
        parts.push(format!(
            "{} never taken (e.g. `{}`)",
            lost.len(),
            sent.name(lost[0])
        ));
    }
    if !twice.is_empty() {
        parts.push(format!(
            "{} taken more than once (e.g. `{}`)",
            twice.len(),
            sent.name(twice[0])
        ));
    }
    if !made_up.is_empty() {
        parts.push(format!(
            "{} taken that no producer put, torn or stale (e.g. `{}`)",
            made_up.len(),
            made_up[0]
        ));
    }
    Err(Failure::wrong(
        format!("each of the {} messages taken exactly once", sent.total()),
        format!("{taken_total} messages taken: {}", parts.join(", ")),
    )
    .because(why_wrong.to_string()))
}

fn full_buffer_blocks(run: &mut Run) -> Outcome {
    let capacity: usize = run.rng.random_range(2..=5);
    let per_producer: usize = run.rng.random_range(capacity + 3..=capacity + 10);
    let (producers, consumers) = (2, 2);
    let sent = Messages::new(run, producers, per_producer);
    sent.write(run)?;
    let mut p = run.spawn(
        "buffer",
        &[
            capacity.to_string(),
            producers.to_string(),
            consumers.to_string(),
        ],
    )?;
    let program = p.pid;
    // The consumers wait at the gate (reading stdin). Once the buffer is
    // full, the producers must sleep in sem_wait.
    let mut calm_since: Option<Instant> = None;
    loop {
        still_running(&mut p, "the program to wait for its consumers")?;
        let children = procfs::children(program);
        let exited: Vec<i32> = children.iter().copied().filter(|&c| !alive(c)).collect();
        if !exited.is_empty() {
            return Err(Failure::wrong(
                format!(
                    "the producers to wait once {capacity} items fill the buffer, while no consumer takes any"
                ),
                format!(
                    "process(es) {} finished while the consumers were held: {} items went into a buffer of {capacity} slots",
                    list(&exited),
                    sent.total()
                ),
            )
            .because(
                "put did not wait while the buffer was full, so it overwrote items nobody had \
                 taken: it must first wait on the semaphore that counts free slots",
            ));
        }
        let at_gate = children.iter().filter(|&&c| blocked_in(c, "read")).count();
        let asleep = children.iter().filter(|&&c| in_sem_wait(c)).count();
        if children.len() == producers + consumers
            && at_gate == consumers
            && asleep == producers
            && blocked_in(program, "wait4")
        {
            let since = *calm_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_millis(100) {
                break;
            }
        } else {
            calm_since = None;
        }
        if Instant::now() >= run.deadline {
            return Err(run.timed_out(
                "the producers blocked in sem_wait on a full buffer, the consumers at their gate",
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    p.close_stdin();
    run.rest(&mut p, "the program to finish")?;
    run.expect_success(&mut p)?;
    check_taken(
        run,
        consumers,
        &sent,
        "the semaphores must count free slots (empty, from the capacity) and items (full, from \
         0): put waits on empty and posts full, take waits on full and posts empty",
    )
}

/// Rounds of the stress test: a race that shows in one run out of ten on
/// a very busy machine still shows in one of the three.
const STRESS_ROUNDS: usize = 3;

fn buffer_under_stress(run: &mut Run) -> Outcome {
    for _ in 0..STRESS_ROUNDS {
        stress_round(run)?;
    }
    Ok(())
}

fn stress_round(run: &mut Run) -> Outcome {
    let capacity: usize = run.rng.random_range(16..=64);
    let per_producer: usize = run.rng.random_range(30_000..=35_000);
    let (producers, consumers) = (4, 4);
    for c in 0..consumers {
        let _ = std::fs::remove_file(run.sandbox.tmp.join(format!("taken-{c}.txt")));
    }
    let sent = Messages::new(run, producers, per_producer);
    sent.write(run)?;
    let mut p = run.spawn(
        "buffer",
        &[
            capacity.to_string(),
            producers.to_string(),
            consumers.to_string(),
        ],
    )?;
    let program = p.pid;
    p.close_stdin();
    let why = "two processes used the ring at the same time: both read the same tail (or head), \
               so one item overwrote another and a slot was taken twice. Hold the mutex (a \
               semaphore starting at 1) while reading and moving the index";
    let mut stuck_since: Option<Instant> = None;
    loop {
        if let Ok(exit) = p.wait(Instant::now()) {
            if exit != Exit::Code(0) {
                return Err(Failure::wrong(
                    "the program to exit with status 0",
                    format!("it ended with {exit}"),
                ));
            }
            break;
        }
        // Stuck: the parent waits for its children and every child sleeps
        // in sem_wait. With correct semaphores someone can always go on.
        let children = live_children(program);
        let stuck = blocked_in(program, "wait4")
            && !children.is_empty()
            && children.iter().all(|&c| in_sem_wait(c));
        if stuck {
            let since = *stuck_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= STUCK_FOR {
                return Err(Failure::wrong(
                    "every consumer to take its end marker and finish",
                    format!(
                        "processes {} wait in sem_wait forever, while the program waits for them",
                        list(&children)
                    ),
                )
                .because(format!(
                    "items were lost (at least one consumer's end marker): {why}"
                )));
            }
        } else {
            stuck_since = None;
        }
        if Instant::now() >= run.deadline {
            return Err(run.timed_out("the program to finish"));
        }
        // Stop a running producer or consumer for a moment, wherever it
        // is, as a busy machine's scheduler does at any instruction. A
        // buffer with its mutex does not mind; one without is caught in
        // the middle of a put or a take, load or no load.
        let running: Vec<i32> = children
            .iter()
            .copied()
            .filter(|&c| procfs::stat(c).is_some_and(|s| s.state == 'R'))
            .collect();
        if let Some(&victim) = running.choose(&mut run.rng) {
            let victim = Pid::from_raw(victim);
            let _ = kill(victim, Signal::SIGSTOP);
            std::thread::sleep(Duration::from_micros(300));
            let _ = kill(victim, Signal::SIGCONT);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    run.rest(&mut p, "the program's last line")?;
    check_taken(run, consumers, &sent, why)
}
