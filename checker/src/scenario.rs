//! What a lab's checks are made of: a [`Scenario`] is a declaration (name,
//! points, time limit, what the checker does, what it expects, hints) plus
//! the function that plays the other end; [`Run`] is what that function
//! gets to work with.

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
    /// Extra lines: where each process was blocked, stderr, ...
    pub details: Vec<String>,
}

impl Failure {
    pub fn wrong(expected: impl Into<String>, happened: impl Into<String>) -> Failure {
        Failure {
            kind: Kind::Wrong,
            expected: expected.into(),
            happened: happened.into(),
            why: None,
            details: Vec::new(),
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
        }
    }

    pub fn internal(error: impl std::fmt::Display) -> Failure {
        Failure {
            kind: Kind::Internal,
            expected: "the checker to be able to run this scenario".into(),
            happened: format!("the checker failed: {error}"),
            why: None,
            details: Vec::new(),
        }
    }

    /// Adds the diagnosis of the cause.
    pub fn because(mut self, why: impl Into<String>) -> Failure {
        self.why = Some(why.into());
        self
    }

    /// The whole message, as the reports show it.
    pub fn message(&self, hint: Option<&str>) -> String {
        let mut out = format!(
            "expected: {}\nhappened: {}",
            shorten(&self.expected),
            shorten(&self.happened)
        );
        if let Some(why) = &self.why {
            out.push_str(&format!("\nwhy:      {why}"));
        }
        for d in &self.details {
            out.push_str(&format!("\n  {d}"));
        }
        if let Some(h) = hint {
            out.push_str(&format!("\nhint:     {h}"));
        }
        out
    }
}

/// A program a scenario started, as the runner sees it afterwards.
pub struct Spawned {
    pub pid: i32,
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
}

impl<'a> Run<'a> {
    pub fn new(bins: &'a Bins, sandbox: Sandbox, limit: Duration, max_procs: usize) -> Run<'a> {
        let started = Instant::now();
        Run {
            bins,
            sandbox,
            deadline: started + limit,
            limit,
            rng: StdRng::from_os_rng(),
            monitor: Monitor::start(max_procs),
            limits: Limits {
                processes: max_procs,
                ..Limits::default()
            },
            spawned: Vec::new(),
        }
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
            ("LAB_IPC_PREFIX", self.sandbox.ipc_prefix.clone()),
            ("LAB_TMP", self.sandbox.tmp.display().to_string()),
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

    /// The next line `proc` prints; fails at end of output or at the deadline.
    pub fn line(&self, proc: &mut Proc, what: &str) -> Result<Line, Failure> {
        match proc.next_line(self.deadline) {
            Ok(Some(line)) => Ok(line),
            Ok(None) => Err(Failure::wrong(
                what.to_string(),
                format!("{} closed its output before printing it", proc.name),
            )),
            Err(Waited::TimedOut) => Err(self.timed_out(what)),
        }
    }

    /// A time-out failure, with where every process is blocked right now:
    /// taken before anything is dropped, while the processes still hang.
    pub fn timed_out(&self, waiting_for: &str) -> Failure {
        let mut failure = Failure::timed_out(waiting_for, self.limit);
        failure.details = self
            .hang_report()
            .into_iter()
            .map(|l| format!("- {l}"))
            .collect();
        failure
    }

    /// Where every process is blocked right now, one sentence each. With
    /// one program it is "the program"; with several, each by its name.
    pub fn hang_report(&self) -> Vec<String> {
        let checker = crate::sandbox::checker_pid();
        match self.spawned.as_slice() {
            [] | [_] => {
                let program = self.spawned.first().map(|s| s.pid).unwrap_or(0);
                diagnose::hang_report(program, checker)
            }
            many => {
                let programs: Vec<(i32, &str)> =
                    many.iter().map(|s| (s.pid, s.name.as_str())).collect();
                diagnose::hang_report_among(&programs, checker)
            }
        }
    }

    /// All the lines `proc` prints until its output closes.
    pub fn rest(&self, proc: &mut Proc, what: &str) -> Result<Vec<Line>, Failure> {
        let mut out = Vec::new();
        loop {
            match proc.next_line(self.deadline) {
                Ok(Some(line)) => out.push(line),
                Ok(None) => return Ok(out),
                Err(Waited::TimedOut) => return Err(self.timed_out(what)),
            }
        }
    }

    /// Waits for `proc` to exit, within the deadline.
    pub fn wait(&self, proc: &mut Proc) -> Result<Exit, Failure> {
        proc.wait(self.deadline)
            .map_err(|_| self.timed_out(&format!("{} to exit", proc.name)))
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
        let f = Failure::wrong("one line", "two lines").because("the buffer was copied");
        let m = f.message(Some("flush first"));
        assert_eq!(
            m,
            "expected: one line\nhappened: two lines\nwhy:      the buffer was copied\nhint:     flush first"
        );
    }
}
