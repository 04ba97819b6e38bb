//! The printer room: the checker is the printer, for the pool of forked
//! jobs and for the named semaphore shared by unrelated `job` programs.

use crate::pid::Pid;
use std::io::{ErrorKind, Read};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::seq::SliceRandom;

use super::{STUCK_FOR, alive, in_sem_wait, list, live_children};
use crate::peers::gate::peer_pid;
use crate::peers::waiting::{described, spinning};
use crate::process::Proc;
use crate::procfs;
use crate::scenario::{Failure, Outcome, Run};

/// A job printing: connected to the checker until the checker drops it.
struct Holder {
    stream: UnixStream,
    pid: Pid,
    job: usize,
}

/// The printer room, as the checker plays it.
struct Printers {
    listener: UnixListener,
    printers: usize,
    jobs: usize,
    inside: Vec<Holder>,
    /// (pid, job) of the jobs the checker let finish.
    finished: Vec<(Pid, usize)>,
    /// Set when the jobs must be children of this program.
    parent: Option<Pid>,
}

impl Printers {
    fn new(run: &Run, printers: usize, jobs: usize, parent: Option<Pid>) -> Result<Self, Failure> {
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
        waiting: &mut dyn FnMut(&Printers) -> Vec<Pid>,
        ended: &mut dyn FnMut() -> Outcome,
    ) -> Outcome {
        let target = self.printers.min(expected_jobs - self.finished.len());
        let mut stuck_since: Option<Instant> = None;
        let mut awake_since: Option<Instant> = None;
        loop {
            self.accept_new(run)?;
            let waiters = waiting(self);
            let expected_waiters = expected_jobs - self.finished.len() - self.inside.len();
            let all_waiting = waiters.len() == expected_waiters;
            let blocked = all_waiting && waiters.iter().all(|&p| in_sem_wait(p));
            if blocked && self.inside.len() == target {
                return Ok(());
            }
            // Every printer busy, every other job started, and some of
            // them still not asleep in sem_wait after a second: how do
            // they wait?
            if all_waiting && !blocked && self.inside.len() == target {
                let since = *awake_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= Duration::from_secs(1) {
                    awake_since = None;
                    let awake: Vec<Pid> = waiters
                        .iter()
                        .copied()
                        .filter(|&p| !in_sem_wait(p))
                        .collect();
                    waits_without_blocking(run, &awake)?;
                }
            } else {
                awake_since = None;
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

    fn stuck(&self, waiters: &[Pid], target: usize) -> Failure {
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

/// Once every job has ended, the spool still running: the name must still
/// be there, and a late job must open it, find a printer and print.
fn late_job(run: &mut Run, room: &mut Printers, spool: &mut Proc, job: usize) -> Outcome {
    let sem = format!(
        "/dev/shm/sem.{}printers",
        run.sandbox.ipc_prefix.trim_start_matches('/')
    );
    if !run
        .sandbox
        .ipc_objects()
        .iter()
        .any(|o| o.display().to_string() == sem)
    {
        let ended: Vec<String> = room
            .finished
            .iter()
            .map(|(p, j)| format!("job {j} ({p})"))
            .collect();
        return Err(Failure::wrong(
            format!("{sem} to stay while the spool runs, for jobs still to come"),
            format!(
                "it was gone once {} had ended, and the spool (its creator) was still running",
                ended.join(", ")
            ),
        )
        .because(
            "a job removed the name when it closed its handle: a handle from `open` must only \
             close (sem_close); only the creator removes the name (sem_unlink), so that jobs \
             started later still find it",
        )
        .hint("in Drop, call sem_unlink only when `unlink_by` is this process (the creator)"));
    }
    let mut late = run.spawn("job", &[job.to_string()])?;
    let pid = late.pid;
    let mut waiting = |_: &Printers| -> Vec<Pid> { Vec::new() };
    let mut ended = || {
        if let Ok(exit) = late.wait(Instant::now()) {
            return Err(Failure::wrong(
                format!("job {job}, started after the others had ended, to print"),
                format!("it ended with {exit} first"),
            ));
        }
        still_running(spool, "the spool to run until its stdin closes")
    };
    let before = room.finished.len();
    let target_jobs = before + 1;
    room.settle(run, target_jobs, &mut waiting, &mut ended)?;
    if !room.inside.iter().any(|h| h.pid == pid) {
        return Err(Failure::internal("the late job is not the one printing"));
    }
    room.release(run, 1);
    run.expect_success(&mut late)
}

/// Jobs that wait for a printer, all printers being taken, and are not
/// asleep in sem_wait: watched for 300 ms, a job that never sleeps waits in
/// a busy loop; one that sleeps elsewhere polls.
fn waits_without_blocking(run: &Run, awake: &[Pid]) -> Outcome {
    let hint = "`wait` is sem_wait, which sleeps until a unit is posted (in a loop only for \
                EINTR); keep sem_trywait for try_wait";
    if let Some((job, spent)) = spinning(run, awake, Duration::from_millis(300)) {
        return Err(Failure::wrong(
            format!("job {job} to sleep in sem_wait while every printer is taken"),
            described(&spent),
        )
        .because(
            "the job waits for a printer in a busy loop (trying again and again, as a loop \
             around sem_trywait does) instead of blocking in sem_wait",
        )
        .hint(hint));
    }
    for &job in awake {
        if !alive(job) || in_sem_wait(job) {
            continue;
        }
        let call = procfs::blocked(job)
            .syscall
            .and_then(|(nr, _)| crate::diagnose::syscall_name(nr));
        if let Some(call) = call.filter(|c| {
            matches!(
                *c,
                "nanosleep" | "clock_nanosleep" | "sched_yield" | "poll" | "select"
            )
        }) {
            return Err(Failure::wrong(
                format!("job {job} to sleep in sem_wait while every printer is taken"),
                format!("it sleeps in {call} and wakes up again and again"),
            )
            .because(
                "the job waits for a printer by polling (trying the semaphore, then sleeping a \
                 little, again and again) instead of blocking in sem_wait, which wakes it as \
                 soon as a printer is free",
            )
            .hint(hint));
        }
    }
    Ok(())
}

/// The `job N` line a job sends when it connects.
pub fn read_job_line(run: &Run, mut stream: &UnixStream) -> Result<String, Failure> {
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
pub fn still_running(p: &mut Proc, what: &str) -> Outcome {
    match p.wait(Instant::now()) {
        Err(_) => Ok(()),
        Ok(exit) => Err(Failure::wrong(
            what.to_string(),
            format!("{} ended first, with {exit}", p.name),
        )),
    }
}

pub fn printer_pool(run: &mut Run) -> Outcome {
    let printers: usize = run.rng.random_range(2..=3);
    let jobs: usize = run.rng.random_range(7..=8);
    // The printer exists before any job: a job that finds no socket
    // "prints" on its own, as when run by hand.
    let mut room = Printers::new(run, printers, jobs, None)?;
    let mut p = run.spawn("pool", &[jobs.to_string(), printers.to_string()])?;
    let program = p.pid;
    room.parent = Some(program);

    let mut waiting = |room: &Printers| -> Vec<Pid> {
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

pub fn named_printers(run: &mut Run) -> Outcome {
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

    // One job more than started at first: a late one, once the others
    // have ended.
    let mut room = Printers::new(run, printers, jobs + 1, None)?;
    let mut procs: Vec<Proc> = Vec::new();
    let mut pids: Vec<Pid> = Vec::new();
    // The jobs started so far that neither print nor have printed.
    let waiting = |pids: &[Pid], room: &Printers| -> Vec<Pid> {
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
    late_job(run, &mut room, &mut spool, jobs)?;
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
