//! Several checkers at once: a child `lab check LAB --format json` process
//! per lab, taking labs from a queue as each finishes one, and their
//! reports read back and merged. `check` uses it for several labs, `grade`
//! for each submission.
//!
//! Why processes: a checker watches its scenario's programs as its own
//! descendants (the monitor, the clean-up, the hang report), so two labs
//! checked in one process would see each other's programs. Why more
//! checkers than cores: most of a lab's time is spent waiting for its
//! programs (scenarios pace their peers, wait for time-outs, measure CPU
//! over a second). On the course's 2-core machine, `check --all` of the
//! solutions took 35 s one lab at a time and about 12 s four at a time, and
//! grading a submission (two at a time) 10.5 s with two checkers each,
//! 7.4 s with three and 6.0 s with four (`checker/benches/README.md`).

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::labs;
use crate::report::Report;

/// How many checkers work at once on one tree.
pub const AT_ONCE: usize = 4;

/// Generous time for every lab of a tree: every scenario's limit, plus
/// builds. A checker still running then is stopped.
pub fn budget() -> Duration {
    let scenarios: Duration = labs::ALL
        .iter()
        .flat_map(|l| l.scenarios.iter())
        .map(|s| s.limit)
        .sum();
    scenarios + Duration::from_secs(120 + 60 * labs::ALL.len() as u64)
}

/// What to do with the labs not yet started once a checker fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Start none: the tree is not graded, and its other labs would only
    /// cost time (`grade`).
    Stop,
    /// Check them all the same, and report every lab that could be
    /// checked (`check`).
    GoOn,
}

/// Hands the labs of `queue` to `workers` threads, each running `check`
/// on one lab at a time, and returns every result in the order they
/// finished.
pub fn each_lab<F>(
    queue: VecDeque<String>,
    workers: usize,
    on_error: OnError,
    check: F,
) -> Vec<Result<Report, String>>
where
    F: Fn(&str) -> Result<Report, String> + Sync,
{
    let queue = Mutex::new(queue);
    let done = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            let (queue, done, check) = (&queue, &done, &check);
            let started = std::thread::Builder::new()
                .name("checker".into())
                .spawn_scoped(scope, move || {
                    loop {
                        let Some(lab) = queue.lock().unwrap().pop_front() else {
                            return;
                        };
                        let result = check(&lab);
                        let failed = result.is_err();
                        done.lock().unwrap().push(result);
                        if failed && on_error == OnError::Stop {
                            queue.lock().unwrap().clear();
                            return;
                        }
                    }
                });
            if let Err(e) = started {
                done.lock()
                    .unwrap()
                    .push(Err(format!("cannot start a thread to run a checker: {e}")));
                queue.lock().unwrap().clear();
            }
        }
    });
    done.into_inner().unwrap()
}

/// Runs `cmd`, a `lab check ... --format json`, in a process group of its
/// own, stopped (with everything it started) at `budget`: its report, or
/// why there is none.
pub fn report_of(mut cmd: Command, budget: Duration) -> Result<Report, String> {
    let began = Instant::now();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the checker: {e}"))?;
    let kill = |child: &mut std::process::Child| {
        let pgid = crate::pid::Pid::of_child(child).into();
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
    };
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_reader = std::thread::Builder::new()
        .name("checker stdout".into())
        .spawn(move || {
            let mut s = Vec::new();
            let _ = stdout.read_to_end(&mut s);
            s
        });
    let err_reader = std::thread::Builder::new()
        .name("checker stderr".into())
        .spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
    let (out_reader, err_reader) = match (out_reader, err_reader) {
        (Ok(out), Ok(err)) => (out, err),
        (Err(e), _) | (_, Err(e)) => {
            kill(&mut child);
            return Err(format!(
                "cannot start a thread to read the checker's output: {e}"
            ));
        }
    };
    let deadline = began + budget;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                kill(&mut child);
                break None;
            }
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    let Some(status) = status else {
        return Err(format!(
            "the check took longer than {} s and was stopped",
            budget.as_secs()
        ));
    };
    let report = serde_json::from_slice::<Value>(&stdout)
        .ok()
        .and_then(|v| Report::from_json(&v).ok());
    match report {
        // Exit status 2: the checker itself failed in a scenario.
        Some(report) if status.code() != Some(2) => Ok(report),
        _ => {
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            let last = lines.last().copied().unwrap_or("no message");
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            Err(format!("the checker failed ({status}): {last}\n{tail}"))
        }
    }
}

/// How long each lab took to check, so far in this run: labs are handed
/// out longest first, so that a tree's last lab is a short one and its
/// checkers finish together.
#[derive(Default)]
pub struct LabDurations(Mutex<HashMap<String, (Duration, u32)>>);

impl LabDurations {
    pub fn record(&self, lab: &str, took: Duration) {
        let mut seen = self.0.lock().unwrap();
        let entry = seen.entry(lab.to_string()).or_default();
        entry.0 += took;
        entry.1 += 1;
    }

    /// `labs`, longest first by their mean so far; a lab not yet checked
    /// counts as the longest, and ties keep the order given.
    pub fn order(&self, labs: &[String]) -> VecDeque<String> {
        let seen = self.0.lock().unwrap();
        let mean = |lab: &String| seen.get(lab).map(|&(sum, n)| sum / n);
        let mut labs = labs.to_vec();
        // Stable: never checked (None) first, then the longest.
        labs.sort_by(|a, b| match (mean(a), mean(b)) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, Some(_)) => std::cmp::Ordering::Less,
            (Some(_), None) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => y.cmp(&x),
        });
        labs.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(id: &str) -> Report {
        Report {
            labs: vec![crate::report::LabReport {
                id: id.into(),
                title: String::new(),
                tree: "t".into(),
                build_error: None,
                scenarios: Vec::new(),
            }],
        }
    }

    #[test]
    fn every_lab_is_checked_once() {
        let labs: VecDeque<String> = (1..=12).map(|n| n.to_string()).collect();
        let done = each_lab(labs, 4, OnError::Stop, |lab| Ok(report(lab)));
        let mut ids: Vec<String> = done
            .into_iter()
            .map(|r| r.unwrap().labs[0].id.clone())
            .collect();
        ids.sort_by_key(|id| id.parse::<u32>().unwrap());
        assert_eq!(ids, (1..=12).map(|n| n.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn no_lab_starts_after_an_error() {
        let labs: VecDeque<String> = (1..=12).map(|n| n.to_string()).collect();
        let check = |lab: &str| {
            if lab == "3" {
                Err("broken".into())
            } else {
                Ok(report(lab))
            }
        };
        let done = each_lab(labs.clone(), 1, OnError::Stop, check);
        assert_eq!(done.len(), 3);
        assert!(done[2].is_err());
        let done = each_lab(labs, 1, OnError::GoOn, check);
        assert_eq!(done.len(), 12);
        assert_eq!(done.iter().filter(|r| r.is_err()).count(), 1);
    }

    #[test]
    fn longest_first_and_unknown_before_known() {
        let d = LabDurations::default();
        d.record("1", Duration::from_secs(2));
        d.record("2", Duration::from_secs(9));
        d.record("2", Duration::from_secs(11));
        let labs: Vec<String> = ["1", "2", "3"].map(String::from).to_vec();
        assert_eq!(Vec::from(d.order(&labs)), ["3", "2", "1"]);
    }
}
