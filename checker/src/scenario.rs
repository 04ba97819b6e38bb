//! What a lab's checks are made of: a [`Scenario`] is a declaration (name,
//! points, time limit, what the checker does, what it expects, hints) plus
//! the function that plays the other end; [`Run`] is what that function
//! gets to work with.

use crate::pid::Pid;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::diagnose;
use crate::monitor::Monitor;
use crate::process::{Capture, Exit, Limits, Line, Proc, Spawn, Waited};
use crate::sandbox::Sandbox;
use crate::stuck::{self, Activity};

/// One check of a lab, declared as data.
pub struct Scenario {
    /// Short, kebab-case, unique in the lab: `fork-returns-twice`.
    pub name: &'static str,
    pub points: u32,
    /// Wall-clock limit for the whole scenario.
    pub limit: Duration,
    /// What the checker does, in one sentence.
    pub does: &'static str,
    /// What it expects to see, in one sentence.
    pub expects: &'static str,
    /// Hints from gentle to concrete; `cargo lab hint` shows one at a time.
    pub hints: &'static [&'static str],
    /// Processes allowed alive at once.
    pub max_procs: usize,
    pub run: fn(&mut Run) -> Outcome,
}

/// A typical bug kept as a patch of the solution, and the scenario that
/// must catch it with a message that names the cause.
pub struct Fixture {
    /// The patch file's name in `checker/fixtures/NN-slug/`, without `.patch`.
    pub name: &'static str,
    pub caught_by: &'static str,
    /// Words the failure message must contain.
    pub says: &'static str,
}

/// A correct solution written differently from the reference, kept as a
/// patch of it: it must pass every scenario of the lab.
pub struct Variant {
    /// The patch file's name in `checker/fixtures/NN-slug/`, without `.patch`.
    pub name: &'static str,
    /// The other design, in a few words: "a poll loop instead of threads".
    pub design: &'static str,
}

pub type Outcome = Result<(), Failure>;

/// Why a scenario failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// The program did something other than expected.
    Wrong,
    /// The scenario hit its time limit.
    TimedOut,
    /// The checker itself could not do its part (exit status 2).
    Internal,
}

#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: Kind,
    pub expected: String,
    pub happened: String,
    /// The checker's diagnosis of the cause, when it has one.
    pub why: Option<String>,
    /// Extra lines: where each process was blocked, stderr, ... shown
    /// right under `happened`, which they belong to.
    pub details: Vec<String>,
    /// The hint for the cause the checker diagnosed. When it is `None`,
    /// the report shows the scenario's first hint only if no cause was
    /// diagnosed (`why` is empty): a hint for another cause would send the
    /// student to fix code that already works.
    pub hint: Option<String>,
}

impl Failure {
    pub fn wrong(expected: impl Into<String>, happened: impl Into<String>) -> Failure {
        Failure {
            kind: Kind::Wrong,
            expected: expected.into(),
            happened: happened.into(),
            why: None,
            details: Vec::new(),
            hint: None,
        }
    }

    pub fn timed_out(waiting_for: impl Into<String>, limit: Duration) -> Failure {
        Failure {
            kind: Kind::TimedOut,
            expected: waiting_for.into(),
            happened: format!(
                "the time limit ({} s) passed first; where each process was then:",
                limit.as_secs_f64()
            ),
            why: None,
            details: Vec::new(),
            hint: None,
        }
    }

    pub fn internal(error: impl std::fmt::Display) -> Failure {
        Failure {
            kind: Kind::Internal,
            expected: "the checker to be able to run this scenario".into(),
            happened: format!("the checker failed: {error}"),
            why: None,
            details: Vec::new(),
            hint: None,
        }
    }

    /// Every process was blocked for good and nothing changed for `still`:
    /// none of them could go on without the checker, which waited for them.
    pub fn stuck(waiting_for: impl Into<String>, still: Duration) -> Failure {
        Failure {
            kind: Kind::TimedOut,
            expected: waiting_for.into(),
            happened: format!(
                "every process was blocked and nothing changed for {:.0} s: none of them could go on \
                 (a deadlock, or a wait for something that never comes); where each process was:",
                still.as_secs_f64().floor().max(1.0)
            ),
            why: None,
            details: Vec::new(),
            hint: None,
        }
    }

    /// Adds the diagnosis of the cause.
    pub fn because(mut self, why: impl Into<String>) -> Failure {
        self.why = Some(why.into());
        self
    }

    /// Adds the hint for the diagnosed cause (shown instead of the
    /// scenario's first hint).
    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    /// The hint the report shows: the one for the diagnosed cause, else the
    /// scenario's first hint when no cause was diagnosed (or the cause is a
    /// `todo!()` still in place), else none.
    pub fn hint_to_show<'h>(&'h self, scenario_hint: Option<&'h str>) -> Option<&'h str> {
        match (&self.hint, &self.why) {
            (Some(h), _) => Some(h),
            (None, None) => scenario_hint,
            (None, Some(why)) if why.starts_with("not implemented yet") => scenario_hint,
            (None, Some(_)) => None,
        }
    }

    /// The whole message, as the reports show it.
    pub fn message(&self, hint: Option<&str>) -> String {
        let mut out = format!(
            "expected: {}\nhappened: {}",
            shorten(&self.expected),
            shorten(&self.happened)
        );
        for d in &self.details {
            out.push_str(&format!("\n  {d}"));
        }
        if let Some(why) = &self.why {
            out.push_str(&format!("\nwhy:      {why}"));
        }
        if let Some(h) = self.hint_to_show(hint) {
            out.push_str(&format!("\nhint:     {h}"));
        }
        out
    }
}

/// A program a scenario started, as the runner sees it afterwards.
pub struct Spawned {
    pub pid: Pid,
    pub name: String,
    pub stdout: Capture,
    pub stderr: Capture,
}

/// Cuts what a program printed to a readable length.
fn shorten(text: &str) -> String {
    const MAX: usize = 400;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} more bytes)", &text[..end], text.len() - end)
}

/// Compiled programs of the lab under test, by binary name.
pub type Bins = HashMap<String, PathBuf>;

/// What a scenario function works with.
pub struct Run<'a> {
    bins: &'a Bins,
    pub sandbox: Sandbox,
    pub deadline: Instant,
    /// The scenario's time limit.
    pub limit: Duration,
    pub rng: StdRng,
    pub monitor: Monitor,
    limits: Limits,
    /// Every program started: pid, name, and its stdout and stderr.
    pub spawned: Vec<Spawned>,
    /// Bumped by the checker's peers whenever they act (see [`Activity`]).
    pub activity: Activity,
}

/// How often the waiting helpers look whether the program is stuck.
const LOOK_EVERY: Duration = Duration::from_millis(100);

impl<'a> Run<'a> {
    pub fn new(
        bins: &'a Bins,
        sandbox: Sandbox,
        limit: Duration,
        max_procs: usize,
    ) -> Result<Run<'a>, Failure> {
        let monitor = Monitor::start(max_procs)
            .map_err(|e| Failure::internal(format!("starting the process monitor: {e}")))?;
        let started = Instant::now();
        Ok(Run {
            bins,
            sandbox,
            deadline: started + limit,
            limit,
            rng: StdRng::from_os_rng(),
            monitor,
            limits: Limits {
                processes: max_procs,
                ..Limits::default()
            },
            spawned: Vec::new(),
            activity: Activity::default(),
        })
    }

    /// Starts one of the lab's programs with `args`, in the scenario's
    /// temporary directory, with `LAB_IPC_PREFIX` and `LAB_TMP` set.
    pub fn spawn(&mut self, bin: &str, args: &[String]) -> Result<Proc, Failure> {
        self.spawn_with_fds(bin, args, &[])
    }

    /// Like [`Run::spawn`], and the program inherits `fds` as descriptors
    /// 3, 4, 5, ... (the checker keeps its own copies: close them once the
    /// program has started, unless the checker is meant to hold them too).
    pub fn spawn_with_fds(
        &mut self,
        bin: &str,
        args: &[String],
        fds: &[BorrowedFd<'_>],
    ) -> Result<Proc, Failure> {
        let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
        let program = self
            .bins
            .get(bin)
            .ok_or_else(|| Failure::internal(format!("the lab has no program named {bin}")))?;
        let env = [
            (
                lab_program::env::IPC_PREFIX,
                self.sandbox.ipc_prefix.clone(),
            ),
            (
                lab_program::env::TMP,
                self.sandbox.tmp.display().to_string(),
            ),
        ];
        let proc = Proc::spawn(Spawn {
            program,
            name: bin,
            args,
            cwd: &self.sandbox.tmp,
            env: &env,
            limits: self.limits,
            cgroup: self.sandbox.cgroup.as_ref().map(|c| c.procs_path()),
            fds: &raw,
        })
        .map_err(|e| Failure::internal(format!("starting {bin}: {e}")))?;
        let (stdout, stderr) = proc.captures();
        self.spawned.push(Spawned {
            pid: proc.pid,
            name: bin.to_string(),
            stdout,
            stderr,
        });
        Ok(proc)
    }

    /// The next line `proc` prints; fails at end of output, at the deadline,
    /// or as soon as every process is stuck (see [`crate::stuck`]).
    pub fn line(&self, proc: &mut Proc, what: &str) -> Result<Line, Failure> {
        self.line_until(proc, self.deadline, what)
    }

    /// Like [`Run::line`], waiting at most `within` (capped by the deadline).
    pub fn line_within(
        &self,
        proc: &mut Proc,
        within: Duration,
        what: &str,
    ) -> Result<Line, Failure> {
        self.line_until(proc, self.until(within), what)
    }

    fn line_until(&self, proc: &mut Proc, until: Instant, what: &str) -> Result<Line, Failure> {
        let mut watch = stuck::Watch::new(crate::sandbox::checker_pid(), self.activity.clone());
        loop {
            let step = (Instant::now() + LOOK_EVERY).min(until);
            match proc.next_line(step) {
                Ok(Some(line)) => return Ok(line),
                Ok(None) => {
                    return Err(Failure::wrong(
                        what.to_string(),
                        format!("{} closed its output before printing it", proc.name),
                    ));
                }
                Err(Waited::TimedOut) => self.check_waiting(&mut watch, until, what)?,
            }
        }
    }

    /// The next line `proc` prints within `quiet`, if it prints one: for
    /// "nothing may come yet". Never a failure; ends early once every
    /// process is stuck (then nothing can come).
    pub fn line_if_any(&self, proc: &mut Proc, quiet: Duration) -> Option<Line> {
        let until = self.until(quiet);
        let mut watch = stuck::Watch::new(crate::sandbox::checker_pid(), self.activity.clone());
        loop {
            let step = (Instant::now() + LOOK_EVERY).min(until);
            match proc.next_line(step) {
                Ok(line) => return line,
                Err(Waited::TimedOut) if Instant::now() >= until => return None,
                Err(Waited::TimedOut) => {
                    if watch.stuck().is_some() {
                        return None;
                    }
                }
            }
        }
    }

    /// Between two looks at a program the checker waits for: fails at
    /// `until`, or when every process has been stuck for a second.
    fn check_waiting(&self, watch: &mut stuck::Watch, until: Instant, what: &str) -> Outcome {
        if Instant::now() >= until {
            return Err(if until >= self.deadline {
                self.timed_out(what)
            } else {
                self.timed_out_within(what, until)
            });
        }
        if let Some(still) = watch.stuck() {
            let mut failure = Failure::stuck(what, still);
            failure.details = self.where_each();
            return Err(failure);
        }
        Ok(())
    }

    /// `now + within`, capped by the scenario's deadline.
    pub fn until(&self, within: Duration) -> Instant {
        (Instant::now() + within).min(self.deadline)
    }

    /// A time-out failure, with where every process is blocked right now:
    /// taken before anything is dropped, while the processes still hang.
    pub fn timed_out(&self, waiting_for: &str) -> Failure {
        let mut failure = Failure::timed_out(waiting_for, self.limit);
        failure.details = self.where_each();
        failure
    }

    /// Like [`Run::timed_out`], for a wait shorter than the scenario's
    /// limit that began at `until - within`.
    fn timed_out_within(&self, waiting_for: &str, _until: Instant) -> Failure {
        let mut failure = Failure::timed_out(waiting_for, self.limit);
        failure.happened =
            "it did not come in the time the checker allows it; where each process was then:"
                .into();
        failure.details = self.where_each();
        failure
    }

    /// The hang report as detail lines.
    fn where_each(&self) -> Vec<String> {
        self.hang_report()
            .into_iter()
            .map(|l| format!("- {l}"))
            .collect()
    }

    /// Where every process is blocked right now, one sentence each. With
    /// one program it is "the program"; with several, each by its name.
    pub fn hang_report(&self) -> Vec<String> {
        let checker = crate::sandbox::checker_pid();
        match self.spawned.as_slice() {
            [] | [_] => {
                let program = self.spawned.first().map_or(Pid::from_raw(0), |s| s.pid);
                diagnose::hang_report(program, checker)
            }
            many => {
                let programs: Vec<(Pid, &str)> =
                    many.iter().map(|s| (s.pid, s.name.as_str())).collect();
                diagnose::hang_report_among(&programs, checker)
            }
        }
    }

    /// All the lines `proc` prints until its output closes.
    pub fn rest(&self, proc: &mut Proc, what: &str) -> Result<Vec<Line>, Failure> {
        self.rest_until(proc, self.deadline, what)
    }

    /// Like [`Run::rest`], waiting at most `within` (capped by the deadline).
    pub fn rest_within(
        &self,
        proc: &mut Proc,
        within: Duration,
        what: &str,
    ) -> Result<Vec<Line>, Failure> {
        self.rest_until(proc, self.until(within), what)
    }

    fn rest_until(
        &self,
        proc: &mut Proc,
        until: Instant,
        what: &str,
    ) -> Result<Vec<Line>, Failure> {
        let mut out = Vec::new();
        let mut watch = stuck::Watch::new(crate::sandbox::checker_pid(), self.activity.clone());
        loop {
            let step = (Instant::now() + LOOK_EVERY).min(until);
            match proc.next_line(step) {
                Ok(Some(line)) => out.push(line),
                Ok(None) => return Ok(out),
                Err(Waited::TimedOut) => self.check_waiting(&mut watch, until, what)?,
            }
        }
    }

    /// Waits for `proc` to exit, within the deadline (or until every
    /// process is stuck).
    pub fn wait(&self, proc: &mut Proc) -> Result<Exit, Failure> {
        self.wait_until(proc, self.deadline)
    }

    /// Like [`Run::wait`], waiting at most `within`.
    pub fn exit_within(&self, proc: &mut Proc, within: Duration) -> Result<Exit, Failure> {
        self.wait_until(proc, self.until(within))
    }

    fn wait_until(&self, proc: &mut Proc, until: Instant) -> Result<Exit, Failure> {
        let what = format!("{} to exit", proc.name);
        let mut watch = stuck::Watch::new(crate::sandbox::checker_pid(), self.activity.clone());
        loop {
            let step = (Instant::now() + LOOK_EVERY).min(until);
            match proc.wait(step) {
                Ok(exit) => return Ok(exit),
                Err(_) => self.check_waiting(&mut watch, until, &what)?,
            }
        }
    }

    /// Waits for `proc` to exit and expects status 0.
    pub fn expect_success(&self, proc: &mut Proc) -> Outcome {
        match self.wait(proc)? {
            Exit::Code(0) => Ok(()),
            other => Err(Failure::wrong(
                format!("{} to exit with status 0", proc.name),
                format!("it ended with {other}"),
            )),
        }
    }

    /// Stops `pid` where it is (SIGSTOP): the "stop it here" gate that
    /// provokes a race on purpose. [`Run::resume`] lets it go on.
    pub fn stop(&self, pid: Pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from(pid),
            nix::sys::signal::Signal::SIGSTOP,
        );
        // Stopped for real before the checker goes on.
        self.poll(Duration::from_secs(1), || {
            crate::procfs::stat(pid).filter(|s| matches!(s.state, 'T' | 't' | 'Z' | 'X'))
        });
        self.activity.touch();
    }

    /// Lets a process stopped by [`Run::stop`] go on (SIGCONT).
    pub fn resume(&self, pid: Pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from(pid),
            nix::sys::signal::Signal::SIGCONT,
        );
        self.activity.touch();
    }

    /// Waits until `pid` sleeps in a system call that only another process
    /// can end (a read, a wait, a lock...). `false` if it does not within
    /// `within`.
    pub fn until_blocked(&self, pid: Pid, within: Duration) -> bool {
        self.poll(within, || {
            let s = crate::procfs::stat(pid)?;
            let b = crate::procfs::blocked(pid);
            (s.state == 'S' && !b.running && b.syscall.is_some()).then_some(())
        })
        .is_some()
    }

    /// Watches `pid` for `window` (capped by the deadline) while it should
    /// be waiting, and fails if it ran and never blocked: a busy loop in
    /// place of a blocking wait (see [`crate::peers::waiting`]).
    /// `waiting_for` says what it waits for ("its children", "the lock").
    pub fn expect_asleep(
        &self,
        pid: Pid,
        window: Duration,
        who: &str,
        waiting_for: &str,
    ) -> Outcome {
        let Some((_, spent)) = crate::peers::waiting::spinning(self, &[pid], window) else {
            return Ok(());
        };
        Err(Failure::wrong(
            format!("{who} to sleep while it waits for {waiting_for}"),
            crate::peers::waiting::described(&spent),
        )
        .because(format!(
            "{who} waits for {waiting_for} in a busy loop (it checks again and again \
             instead of blocking): a whole CPU burnt for nothing"
        ))
        .hint("Block in the call that waits (a blocking read, waitpid without WNOHANG, sem_wait, a lock), instead of asking again in a loop."))
    }

    /// Sleeps for `d`, but never past the scenario's deadline.
    pub fn pause(&self, d: Duration) {
        let until = (Instant::now() + d).min(self.deadline);
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
    }

    /// Polls `probe` every few milliseconds until it returns `Some`, or
    /// `within` passes (capped by the deadline).
    pub fn poll<T>(&self, within: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
        let until = (Instant::now() + within).min(self.deadline);
        loop {
            if let Some(v) = probe() {
                return Some(v);
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Parses `key=value` words of a line: `parent pid=12 child=13`.
pub fn fields(line: &str) -> HashMap<&str, &str> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k, v.trim_end_matches([',', ':', ';'])))
        .collect()
}

/// Quotes what a program printed, the first few lines of it, for a report.
pub fn quote_lines(lines: &[String]) -> String {
    if lines.is_empty() {
        return "nothing".into();
    }
    let shown: Vec<String> = lines.iter().take(6).map(|l| format!("`{l}`")).collect();
    let more = if lines.len() > 6 {
        format!(" and {} more lines", lines.len() - 6)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(", "))
}

/// The number after `key=` in `line`.
pub fn field_num(line: &str, key: &str) -> Option<i64> {
    fields(line).get(key).and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_key_value_words() {
        let line = "worker pid=42 added 7, total=107";
        assert_eq!(field_num(line, "pid"), Some(42));
        assert_eq!(field_num(line, "total"), Some(107));
        assert_eq!(field_num(line, "child"), None);
    }

    #[test]
    fn a_message_lists_what_was_expected_and_what_happened() {
        let f = Failure::wrong("one line", "two lines")
            .because("the buffer was copied")
            .hint("flush before fork");
        let m = f.message(Some("the scenario's first hint"));
        assert_eq!(
            m,
            "expected: one line\nhappened: two lines\nwhy:      the buffer was copied\nhint:     flush before fork"
        );
    }

    #[test]
    fn a_hint_for_another_cause_is_not_shown() {
        let diagnosed = Failure::wrong("a", "b").because("a cause the checker saw");
        assert_eq!(diagnosed.hint_to_show(Some("first hint")), None);
        let todo = Failure::wrong("a", "b").because("not implemented yet: src/lib.rs:3 (start)");
        assert_eq!(todo.hint_to_show(Some("first hint")), Some("first hint"));
        let undiagnosed = Failure::wrong("a", "b");
        assert_eq!(
            undiagnosed.hint_to_show(Some("first hint")),
            Some("first hint")
        );
    }

    #[test]
    fn where_each_process_was_sits_under_what_happened() {
        let mut f = Failure::stuck("a reply", Duration::from_millis(1300)).because("a deadlock");
        f.details = vec!["- the program is blocked in read()".into()];
        let m = f.message(None);
        let happened = m.find("happened:").unwrap();
        let detail = m.find("- the program").unwrap();
        let why = m.find("why:").unwrap();
        assert!(happened < detail && detail < why, "{m}");
        assert!(m.contains("nothing changed for 1 s"), "{m}");
    }
}
