//! `cargo lab verify`: the course checks itself. For every lab, the
//! reference solution passes every scenario, the untouched starter fails
//! every scenario, and every fixture (a typical bug) is caught by the
//! scenario meant for it, with a message that names the cause.

use std::io::Write;

use anstyle::{AnsiColor, Style};
use anyhow::Result;

use super::Verdict;
use super::check::check_lab;
use crate::compile::{self, Built};
use crate::labs::{self, Lab};
use crate::runner;
use crate::stage::{self, Tree, course_root};

const OK: Style = AnsiColor::Green.on_default().bold();
const BAD: Style = AnsiColor::Red.on_default().bold();

pub fn run(names: &[String]) -> Result<Verdict> {
    let labs: Vec<&'static Lab> = if names.is_empty() {
        labs::ALL.to_vec()
    } else {
        names
            .iter()
            .map(|n| labs::find(n))
            .collect::<Result<_, _>>()?
    };
    let mut out = anstream::stdout();
    let mut problems = 0;
    for lab in labs {
        let mut say = |good: bool, what: String| -> Result<()> {
            let (tag, style) = if good { ("ok  ", OK) } else { ("FAIL", BAD) };
            if !good {
                problems += 1;
            }
            writeln!(out, "{style}{tag}{style:#} {} {what}", lab.dir())?;
            out.flush()?;
            Ok(())
        };

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

        let starter = check_lab(&Tree::labs(), lab, None, false)?;
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
                    "starter passes {} (a check that cannot fail, or labs/{} is not the untouched starter)",
                    passing.join(", "),
                    lab.dir()
                ),
            )?,
        }

        for fixture in lab.fixtures {
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
    }
    if problems == 0 {
        writeln!(out, "{OK}the course is sound{OK:#}")?;
        Ok(Verdict::Passed)
    } else {
        writeln!(out, "{BAD}{problems} problem(s){BAD:#}")?;
        Ok(Verdict::Failed)
    }
}
