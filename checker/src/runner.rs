//! Running a lab's scenarios one after the other, each in its own sandbox,
//! and turning what happened into results: the scenario's own verdict, then
//! what the checker noticed itself (a `todo!()`, a panic, a runaway fork, a
//! flood of output, where each process hung).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::labs::Lab;
use crate::report::{LabResult, ScenarioResult};
use crate::sandbox::{self, Sandbox};
use crate::scenario::{Bins, Failure, Run, Scenario, Spawned};

/// Extra time a scenario function gets past its deadline before the
/// watchdog kills its processes to unblock it.
const GRACE: Duration = Duration::from_secs(3);

/// Runs `scenarios` of `lab` against compiled `bins`.
pub fn run_lab(lab: &'static Lab, tree: &str, bins: &Bins, only: Option<&str>) -> LabResult {
    let scenarios = lab
        .scenarios
        .iter()
        .filter(|s| only.is_none_or(|name| s.name == name))
        .map(|s| run_scenario(lab, s, bins))
        .collect();
    LabResult {
        lab,
        tree: tree.to_string(),
        build_error: None,
        scenarios,
    }
}

pub fn run_scenario(lab: &Lab, scenario: &'static Scenario, bins: &Bins) -> ScenarioResult {
    let began = Instant::now();
    let failure = match Sandbox::new(
        &format!("{:02}-{}", lab.number, scenario.name),
        scenario.max_procs,
    ) {
        Ok(sandbox) => run_in(sandbox, scenario, bins),
        Err(e) => Some(Failure::internal(format!("{e:#}"))),
    };
    let passed = failure.is_none();
    ScenarioResult {
        name: scenario.name,
        points: scenario.points,
        passed,
        duration: began.elapsed(),
        hint: scenario.hints.first().map(|h| h.to_string()),
        failure,
    }
}

fn run_in(sandbox: Sandbox, scenario: &'static Scenario, bins: &Bins) -> Option<Failure> {
    let mut run = match Run::new(bins, sandbox, scenario.limit, scenario.max_procs) {
        Ok(run) => run,
        Err(failure) => return Some(failure),
    };

    // The watchdog: should the scenario function itself stay blocked past
    // its deadline, kill every process so that its reads return.
    let (done, wait_done) = mpsc::channel::<()>();
    let watchdog_at = run.deadline + GRACE;
    let watchdog = std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            let wait = watchdog_at.saturating_duration_since(Instant::now());
            if wait_done.recv_timeout(wait).is_err() {
                sandbox::kill_all_descendants(Duration::from_secs(2));
            }
        });
    let watchdog = match watchdog {
        Ok(watchdog) => watchdog,
        Err(e) => return Some(Failure::internal(format!("starting the watchdog: {e}"))),
    };

    let outcome = (scenario.run)(&mut run);
    let _ = done.send(());
    let _ = watchdog.join();

    let runaway = run.monitor.runaway();
    let spawned = std::mem::take(&mut run.spawned);
    // Dropping the run kills and reaps every process left, removes the
    // IPC objects under the prefix and the temporary directory.
    drop(run);

    let mut failure = outcome.err()?;
    // Every process is gone now: let the readers take in the last of their
    // stderr (a panic message may still be on its way) before explaining.
    let until = Instant::now() + Duration::from_secs(2);
    for s in &spawned {
        s.stderr.wait_closed(until);
    }
    explain(&mut failure, &spawned, runaway);
    Some(failure)
}

/// Adds what the checker noticed itself to a failure.
fn explain(failure: &mut Failure, spawned: &[Spawned], runaway: Option<usize>) {
    if let Some(n) = runaway {
        failure.why = Some(format!(
            "{n} processes were alive at once, more than this scenario allows: a runaway fork \
             (a child that goes on forking, or a loop that forks without end). The checker killed them."
        ));
        return;
    }
    if let Some(s) = spawned
        .iter()
        .find(|s| s.stdout.overflowed() || s.stderr.overflowed())
    {
        let flood = format!(
            "{} printed more than the checker keeps (1 MiB); it stopped reading and killed it",
            s.name
        );
        // A cause the scenario diagnosed itself (a busy loop that also
        // prints, say) stays the cause; the flood is what else was seen.
        match failure.why {
            Some(_) => failure.details.push(flood),
            None => failure.why = Some(flood),
        }
        return;
    }
    for s in spawned {
        if s.stderr.text().contains("memory allocation of") {
            failure.why = Some(format!(
                "{} ran out of memory: the checker allows each process 1 GiB of address space",
                s.name
            ));
            return;
        }
    }
    for s in spawned {
        if let Some(p) = Panic::find(&s.stderr.text()) {
            let panic = if p.todo {
                format!("not implemented yet: {} ({})", p.location, p.message)
            } else {
                format!("{} panicked at {}: {}", s.name, p.location, p.message)
            };
            // A `todo!()` is the cause whatever else was seen; another
            // panic does not erase a cause the scenario diagnosed itself.
            match &failure.why {
                Some(_) if !p.todo => failure.details.push(panic),
                _ => failure.why = Some(panic),
            }
            return;
        }
    }
    // Otherwise show the program's own error output, which often says it.
    if failure.why.is_none() {
        for s in spawned {
            let err = s.stderr.text();
            let err = err.trim();
            if !err.is_empty() {
                let shown: Vec<&str> = err.lines().take(6).collect();
                failure
                    .details
                    .push(format!("{} wrote on stderr: {}", s.name, shown.join(" | ")));
                break;
            }
        }
    }
}

/// A Rust panic found in a program's stderr.
#[derive(Debug, PartialEq, Eq)]
pub struct Panic {
    pub location: String,
    pub message: String,
    pub todo: bool,
}

impl Panic {
    /// Finds the first panic: "thread 'main' panicked at FILE:LINE:COL:\nMESSAGE".
    pub fn find(stderr: &str) -> Option<Panic> {
        let mut lines = stderr.lines();
        while let Some(line) = lines.next() {
            let Some(rest) = line.split(" panicked at ").nth(1) else {
                continue;
            };
            let location = rest.trim_end_matches(':');
            // FILE:LINE:COL -> FILE:LINE
            let location = match location.rsplit_once(':') {
                Some((file_line, col)) if col.chars().all(|c| c.is_ascii_digit()) => file_line,
                _ => location,
            };
            let message = lines.next().unwrap_or("").trim().to_string();
            let todo = message.starts_with("not yet implemented");
            let message = message
                .strip_prefix("not yet implemented: ")
                .unwrap_or(&message)
                .to_string();
            return Some(Panic {
                location: location.to_string(),
                message,
                todo,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_todo_with_its_place() {
        let stderr = "\nthread 'main' panicked at labs/01-fork/src/lib.rs:52:5:\nnot yet implemented: start: fork a child\nnote: run with `RUST_BACKTRACE=1`\n";
        let p = Panic::find(stderr).unwrap();
        assert_eq!(p.location, "labs/01-fork/src/lib.rs:52");
        assert_eq!(p.message, "start: fork a child");
        assert!(p.todo);
    }

    #[test]
    fn finds_an_ordinary_panic() {
        let stderr = "thread 'main' panicked at src/main.rs:3:5:\nindex out of bounds\n";
        let p = Panic::find(stderr).unwrap();
        assert!(!p.todo);
        assert_eq!(p.location, "src/main.rs:3");
        assert_eq!(Panic::find("all good\n"), None);
    }
}
