//! `cargo lab verify`: the course checks itself. For every lab, the
//! reference solution passes every scenario, the untouched starter fails
//! every scenario, and every fixture (a typical bug) is caught by the
//! scenario meant for it, with a message that names the cause.

use std::io::Write;

use anstyle::{AnsiColor, Style};
use anyhow::{Context, Result};
use std::path::Path;

use super::Verdict;
use super::check::check_lab;
use crate::compile::{self, Built};
use crate::labs::{self, Lab};
use crate::runner;
use crate::stage::{self, Tree, course_root};

const OK: Style = AnsiColor::Green.on_default().bold();
const BAD: Style = AnsiColor::Red.on_default().bold();

pub fn run(
    names: &[String],
    jobs: usize,
    only: Option<&str>,
    starters: Option<&Path>,
) -> Result<Verdict> {
    let labs = labs::select(names)?;
    if !course_root().join("solutions").is_dir() {
        anyhow::bail!(
            "`cargo lab verify` needs the reference solutions, and this copy of the course has no solutions/ directory (a copy for students, written by `cargo lab template`, leaves them out). Run it in the course's own repository."
        );
    }
    let starter_tree = match starters {
        Some(dir) => Tree::checkout(dir)?,
        None => Tree::labs(),
    };
    if let Some(name) = only {
        let [lab] = labs.as_slice() else {
            anyhow::bail!("--fixture takes one lab: `cargo lab verify 3 --fixture {name}`");
        };
        if !lab.fixtures.iter().any(|f| f.name == name)
            && !lab.variants.iter().any(|v| v.name == name)
        {
            anyhow::bail!("lab {} has no fixture or variant named {name:?}", lab.dir());
        }
    }
    if labs.len() > 1 && jobs > 1 && only.is_none() {
        return run_in_parallel(&labs, jobs, starters);
    }
    let mut out = anstream::stdout();
    let mut problems = 0;
    for &lab in &labs {
        let mut say = |good: bool, what: String| -> Result<()> {
            let (tag, style) = if good { ("ok  ", OK) } else { ("FAIL", BAD) };
            if !good {
                problems += 1;
            }
            writeln!(out, "{style}{tag}{style:#} {} {what}", lab.dir())?;
            out.flush()?;
            Ok(())
        };

        if only.is_none() {
            let solution = check_lab(&Tree::solutions(), lab, None, false)?;
            let failing: Vec<String> = solution
                .scenarios
                .iter()
                .filter(|s| !s.passed)
                .map(|s| format!("{}: {}", s.name, s.message()))
                .collect();
            match (&solution.build_error, failing.is_empty()) {
                (Some(e), _) => say(false, format!("solution does not compile:\n{e}"))?,
                (None, true) => say(
                    true,
                    format!("solution passes all {} scenarios", solution.scenarios.len()),
                )?,
                (None, false) => say(
                    false,
                    format!("solution fails:\n  {}", failing.join("\n  ")),
                )?,
            }

            let starter = check_lab(&starter_tree, lab, None, false)?;
            let passing: Vec<&str> = starter
                .scenarios
                .iter()
                .filter(|s| s.passed)
                .map(|s| s.name)
                .collect();
            match (&starter.build_error, passing.is_empty()) {
                (Some(e), _) => say(false, format!("starter does not compile:\n{e}"))?,
                (None, true) => say(
                    true,
                    format!("starter fails all {} scenarios", starter.scenarios.len()),
                )?,
                (None, false) => say(
                    false,
                    format!(
                        "starter passes {} (a check that cannot fail, or {}/{} is not the untouched starter)",
                        passing.join(", "),
                        starter_tree.label,
                        lab.dir()
                    ),
                )?,
            }
        }
        for fixture in lab
            .fixtures
            .iter()
            .filter(|f| only.is_none_or(|n| n == f.name))
        {
            let patch = course_root()
                .join("checker/fixtures")
                .join(lab.dir())
                .join(format!("{}.patch", fixture.name));
            let staged = match stage::stage(&Tree::solutions(), lab, Some(&patch)) {
                Ok(staged) => staged,
                Err(e) => {
                    say(
                        false,
                        format!("fixture {} cannot be applied: {e:#}", fixture.name),
                    )?;
                    continue;
                }
            };
            let bins = match compile::build(&staged, false)? {
                Built::Ok(bins) => bins,
                Built::Failed(e) => {
                    say(
                        false,
                        format!("fixture {} does not compile:\n{e}", fixture.name),
                    )?;
                    continue;
                }
            };
            let scenario = lab.scenario(fixture.caught_by).ok_or_else(|| {
                anyhow::anyhow!(
                    "fixture {} names no scenario {}",
                    fixture.name,
                    fixture.caught_by
                )
            })?;
            let result = runner::run_scenario(lab, scenario, &bins);
            let message = result.message();
            if result.passed {
                say(
                    false,
                    format!(
                        "fixture {} is not caught by {}",
                        fixture.name, fixture.caught_by
                    ),
                )?;
            } else if !message.contains(fixture.says) {
                say(
                    false,
                    format!(
                        "fixture {} fails {} without saying {:?}:\n  {}",
                        fixture.name,
                        fixture.caught_by,
                        fixture.says,
                        message.replace('\n', "\n  ")
                    ),
                )?;
            } else {
                say(
                    true,
                    format!(
                        "fixture {} is caught by {} ({:?})",
                        fixture.name, fixture.caught_by, fixture.says
                    ),
                )?;
            }
        }

        for variant in lab
            .variants
            .iter()
            .filter(|v| only.is_none_or(|n| n == v.name))
        {
            let patch = course_root()
                .join("checker/fixtures")
                .join(lab.dir())
                .join(format!("{}.patch", variant.name));
            let bins = match stage::stage(&Tree::solutions(), lab, Some(&patch))
                .map_err(|e| format!("cannot be applied: {e:#}"))
                .and_then(|staged| match compile::build(&staged, false) {
                    Ok(Built::Ok(bins)) => Ok(bins),
                    Ok(Built::Failed(e)) => Err(format!("does not compile:\n{e}")),
                    Err(e) => Err(format!("cannot be built: {e:#}")),
                }) {
                Ok(bins) => bins,
                Err(e) => {
                    say(false, format!("variant {} {e}", variant.name))?;
                    continue;
                }
            };
            let result = runner::run_lab(lab, "variant", &bins, None);
            let rejected: Vec<String> = result
                .scenarios
                .iter()
                .filter(|s| !s.passed)
                .map(|s| format!("{}: {}", s.name, s.message().replace('\n', "\n    ")))
                .collect();
            if rejected.is_empty() {
                say(
                    true,
                    format!(
                        "variant {} ({}) passes every scenario",
                        variant.name, variant.design
                    ),
                )?;
            } else {
                say(
                    false,
                    format!(
                        "variant {} ({}) is correct but rejected by:\n  {}",
                        variant.name,
                        variant.design,
                        rejected.join("\n  ")
                    ),
                )?;
            }
        }
    }
    let what = match labs.as_slice() {
        [one] => format!("lab {}", one.dir()),
        _ => "the course".to_string(),
    };
    if problems == 0 {
        writeln!(out, "{OK}{what} is sound{OK:#}")?;
        Ok(Verdict::Passed)
    } else {
        writeln!(out, "{BAD}{problems} problem(s){BAD:#}")?;
        Ok(Verdict::Failed)
    }
}

/// Verifies each lab in a `lab verify LAB` process of its own, `jobs` at a
/// time (much of verifying is waiting for fixtures that hang to time out),
/// and prints their reports in lab order.
fn run_in_parallel(labs: &[&'static Lab], jobs: usize, starters: Option<&Path>) -> Result<Verdict> {
    use std::process::{Command, Stdio};
    use std::sync::{Arc, Mutex};

    type Report = Option<(bool, Vec<u8>)>;
    let stable = super::StableExe::new()?;
    let exe = stable.0.clone();
    let starters: Vec<std::ffi::OsString> = match starters {
        Some(dir) => vec!["--starters".into(), dir.into()],
        None => vec![],
    };
    let ids: Arc<Vec<String>> = Arc::new(labs.iter().map(|l| l.dir()).collect());
    let next = Arc::new(Mutex::new(0usize));
    let reports: Arc<Mutex<Vec<Report>>> = Arc::new(Mutex::new(vec![None; labs.len()]));
    let workers: Vec<_> = (0..jobs.min(labs.len()))
        .map(|_| {
            let (next, reports, exe, ids, starters) = (
                next.clone(),
                reports.clone(),
                exe.clone(),
                ids.clone(),
                starters.clone(),
            );
            std::thread::Builder::new()
                .name("verify".into())
                .spawn(move || {
                    loop {
                        let i = {
                            let mut n = next.lock().unwrap();
                            if *n >= ids.len() {
                                return;
                            }
                            *n += 1;
                            *n - 1
                        };
                        let output = Command::new(&exe)
                            .args(["verify", &ids[i]])
                            .args(&starters)
                            // Bars of labs building side by side would draw over each other.
                            .env("LAB_NO_PROGRESS", "1")
                            .stdin(Stdio::null())
                            .stderr(Stdio::inherit())
                            .output();
                        let report = match output {
                            Ok(o) => (o.status.success(), o.stdout),
                            Err(e) => (
                                false,
                                format!("FAIL {}: cannot run the checker: {e}\n", ids[i])
                                    .into_bytes(),
                            ),
                        };
                        reports.lock().unwrap()[i] = Some(report);
                    }
                })
        })
        .collect::<Result<_, _>>()
        .context("starting a thread to verify labs")?;
    for w in workers {
        let _ = w.join();
    }
    let mut out = anstream::stdout();
    let mut sound = true;
    for (lab, report) in labs.iter().zip(reports.lock().unwrap().iter()) {
        let (ok, text) = report.clone().unwrap_or_else(|| {
            (
                false,
                format!("FAIL {}: not verified\n", lab.dir()).into_bytes(),
            )
        });
        sound &= ok;
        out.write_all(&text)?;
    }
    if sound {
        writeln!(out, "{OK}the course is sound{OK:#}")?;
    } else {
        writeln!(out, "{BAD}some lab is not sound (see above){BAD:#}")?;
    }
    out.flush()?;
    Ok(if sound {
        Verdict::Passed
    } else {
        Verdict::Failed
    })
}
