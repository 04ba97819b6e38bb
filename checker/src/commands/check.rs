//! `cargo lab check`: build a lab, run its scenarios, report.

use std::io::Write;

use anyhow::{Context, Result};

use super::{Verdict, note, stderr_color};
use crate::checkers;
use crate::compile::{self, Built};
use crate::labs::{self, Lab};
use crate::report::{self, Format, LabReport, LabResult, Report};
use crate::runner;
use crate::scenario::Kind;
use crate::stage::{self, Tree, TreeKind};

pub fn run(
    names: &[String],
    all: bool,
    tree: &Tree,
    format: Format,
    scenario: Option<&str>,
) -> Result<Verdict> {
    let labs = if all {
        labs::ALL.to_vec()
    } else {
        labs::select(names)?
    };
    if let Some(name) = scenario {
        for lab in &labs {
            if lab.scenario(name).is_none() {
                let known: Vec<&str> = lab.scenarios.iter().map(|s| s.name).collect();
                anyhow::bail!(
                    "lab {} has no scenario {name:?}; it has: {}",
                    lab.dir(),
                    known.join(", ")
                );
            }
        }
    }
    if labs.len() > 1 {
        return run_side_by_side(&labs, tree, format, scenario);
    }
    let mut results = Vec::new();
    for lab in labs {
        let result = check_lab(
            tree,
            lab,
            scenario,
            (format == Format::Text && stderr_color())
                || std::env::var_os(COMPILER_COLOR).is_some(),
        )?;
        if tree.kind == TreeKind::Labs {
            crate::progress::record(&result);
        }
        results.push(result);
    }
    print(&results, format)?;
    verdict(&results)
}

/// Several labs, each by a checker of its own, `checkers::AT_ONCE` at a
/// time (the labs mostly wait for their programs): the merged report, as
/// one check would print it.
fn run_side_by_side(
    labs: &[&'static Lab],
    tree: &Tree,
    format: Format,
    scenario: Option<&str>,
) -> Result<Verdict> {
    let exe = super::StableExe::new()?;
    let color = format == Format::Text && stderr_color();
    let names: Vec<String> = labs.iter().map(|l| l.number.to_string()).collect();
    let total = names.len();
    let finished = std::sync::atomic::AtomicUsize::new(0);
    note(&format!(
        "checking {total} labs, {} at a time ...",
        checkers::AT_ONCE.min(total)
    ));
    let results = checkers::each_lab(
        names.into(),
        checkers::AT_ONCE,
        checkers::OnError::GoOn,
        |lab| {
            let mut cmd = std::process::Command::new(&exe.0);
            cmd.args(["check", lab, "--format", "json"])
                .args(tree.args())
                .args(scenario.map(|s| ["--scenario", s]).into_iter().flatten())
                // Each bar would draw over the others.
                .env("LAB_NO_PROGRESS", "1");
            if color {
                cmd.env(COMPILER_COLOR, "1");
            }
            let report = checkers::report_of(cmd, checkers::budget());
            if let Ok(r) = &report {
                let n = finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                for l in &r.labs {
                    note(&format!(
                        "[{n}/{total}] {} {}/{}",
                        l.id,
                        l.score(),
                        l.max_score()
                    ));
                }
            }
            report
        },
    );
    let mut merged = Report::default();
    let mut failed = Vec::new();
    for result in results {
        match result {
            Ok(report) => merged.merge(report),
            Err(e) => failed.push(e),
        }
    }
    print_report(&merged, format)?;
    if let Some(e) = failed.first() {
        anyhow::bail!("{e}");
    }
    Ok(if merged.labs.iter().all(LabReport::all_passed) {
        Verdict::Passed
    } else {
        Verdict::Failed
    })
}

/// Set by a checker that runs others (`run_side_by_side`) for a text
/// report on a terminal: the compiler's messages keep their colours.
const COMPILER_COLOR: &str = "LAB_COMPILER_COLOR";

/// Stages, builds and runs one lab. Failures of the student's code are in
/// the result; an `Err` means the checker itself could not work.
pub fn check_lab(
    tree: &Tree,
    lab: &'static Lab,
    only: Option<&str>,
    color: bool,
) -> Result<LabResult> {
    if tree.kind == TreeKind::Checkout && !tree.labs_dir.join(lab.dir()).is_dir() {
        // A submission without this lab: zero for it, and grading goes on.
        let missing = format!("this submission has no labs/{} directory", lab.dir());
        return Ok(LabResult::not_built(lab, &tree.label, missing, only));
    }
    let began = timing::Mark::now();
    let staged = stage::stage(tree, lab, None)?;
    note(&format!("building {}/{} ...", tree.label, lab.dir()));
    let built = compile::build(&staged, color)?;
    let compiled = timing::Mark::now();
    let result = match built {
        Built::Failed(compiler) => LabResult::not_built(lab, &tree.label, compiler, only),
        Built::Ok(bins) => {
            note(&format!(
                "running {} scenario(s) ...",
                only.map_or(lab.scenarios.len(), |_| 1)
            ));
            runner::run_lab(lab, &tree.label, &bins, only)
        }
    };
    timing::record(&tree.label, lab, &began, &compiled, &timing::Mark::now());
    Ok(result)
}

/// Where a check spends its time, for the grading benchmark
/// (`checker/benches/grading.sh`): with `LAB_TIMINGS=FILE`, each lab
/// checked appends one line of JSON to FILE, with the wall and CPU seconds
/// of its build (cargo and rustc) and of its scenarios (the checker's own
/// threads and the programs it ran). Labs are checked one after the other
/// in a process, so the differences of `getrusage` belong to one lab.
mod timing {
    use std::io::Write;
    use std::time::Instant;

    use nix::sys::resource::{UsageWho, getrusage};

    use crate::labs::Lab;

    pub struct Mark {
        at: Instant,
        /// User and system seconds: this process, its reaped children.
        own: (f64, f64),
        children: (f64, f64),
    }

    fn seconds(who: UsageWho) -> (f64, f64) {
        let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        getrusage(who).map_or((0.0, 0.0), |u| (secs(u.user_time()), secs(u.system_time())))
    }

    impl Mark {
        pub fn now() -> Mark {
            Mark {
                at: Instant::now(),
                own: seconds(UsageWho::RUSAGE_SELF),
                children: seconds(UsageWho::RUSAGE_CHILDREN),
            }
        }
    }

    pub fn record(tree: &str, lab: &Lab, began: &Mark, compiled: &Mark, ended: &Mark) {
        let Some(path) = std::env::var_os("LAB_TIMINGS") else {
            return;
        };
        let span = |a: &Mark, b: &Mark| {
            serde_json::json!({
                "wall": (b.at - a.at).as_secs_f64(),
                "user": b.own.0 - a.own.0 + b.children.0 - a.children.0,
                "sys": b.own.1 - a.own.1 + b.children.1 - a.children.1,
            })
        };
        let line = serde_json::json!({
            "tree": tree,
            "lab": lab.dir(),
            "build": span(began, compiled),
            "scenarios": span(compiled, ended),
            // Of which the checker itself (its monitor, readers, scenarios).
            "scenarios_checker": ended.own.0 - compiled.own.0 + ended.own.1 - compiled.own.1,
        });
        // One write per line, in append mode: lines from checkers running
        // at the same time do not mix.
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
    }
}

pub fn print(results: &[LabResult], format: Format) -> Result<()> {
    print_report(&Report::of(results), format)
}

fn print_report(report: &Report, format: Format) -> Result<()> {
    let mut out = anstream::stdout();
    match format {
        Format::Text => report::text(&mut out, report)?,
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report.to_json())?)?,
        Format::Gradescope => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&report::gradescope(report))?
        )?,
    }
    out.flush().context("writing the report")
}

/// Passed when everything passed; an error (exit 2) when the checker
/// itself failed in a scenario.
pub fn verdict(results: &[LabResult]) -> Result<Verdict> {
    for r in results {
        for s in &r.scenarios {
            if let Some(f) = s.failure.as_ref().filter(|f| f.kind == Kind::Internal) {
                anyhow::bail!("scenario {} of lab {}: {}", s.name, r.lab.dir(), f.happened);
            }
        }
    }
    Ok(if results.iter().all(LabResult::all_passed) {
        Verdict::Passed
    } else {
        Verdict::Failed
    })
}
