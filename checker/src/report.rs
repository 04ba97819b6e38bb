//! Results, and the three ways of showing them: text for people, JSON for
//! scripts, and Gradescope's `results.json`.

use std::io::Write;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use serde_json::{Value, json};

use crate::labs::Lab;
use crate::scenario::Failure;

pub struct ScenarioResult {
    pub name: &'static str,
    pub points: u32,
    pub passed: bool,
    pub duration: Duration,
    pub failure: Option<Failure>,
    pub hint: Option<String>,
}

impl ScenarioResult {
    pub fn score(&self) -> u32 {
        if self.passed { self.points } else { 0 }
    }

    /// The failure's message with the hint, or "" when it passed.
    pub fn message(&self) -> String {
        self.failure
            .as_ref()
            .map(|f| f.message(self.hint.as_deref()))
            .unwrap_or_default()
    }
}

pub struct LabResult {
    pub lab: &'static Lab,
    /// Which tree was checked, as the user named it: `labs`, `solutions`, a path.
    pub tree: String,
    /// The compiler's output when the lab did not build.
    pub build_error: Option<String>,
    pub scenarios: Vec<ScenarioResult>,
}

impl LabResult {
    pub fn score(&self) -> u32 {
        self.scenarios.iter().map(ScenarioResult::score).sum()
    }

    pub fn max_score(&self) -> u32 {
        self.scenarios.iter().map(|s| s.points).sum()
    }

    pub fn all_passed(&self) -> bool {
        self.build_error.is_none() && self.scenarios.iter().all(|s| s.passed)
    }

    /// The result of a lab that did not compile: every scenario fails.
    pub fn not_built(
        lab: &'static Lab,
        tree: &str,
        compiler: String,
        only: Option<&str>,
    ) -> LabResult {
        let scenarios = lab
            .scenarios
            .iter()
            .filter(|s| only.is_none_or(|n| n == s.name))
            .map(|s| ScenarioResult {
                name: s.name,
                points: s.points,
                passed: false,
                duration: Duration::ZERO,
                failure: Some(Failure::wrong(
                    "the lab to compile",
                    "it did not compile (see the compiler's message above)",
                )),
                hint: None,
            })
            .collect();
        LabResult {
            lab,
            tree: tree.to_string(),
            build_error: Some(compiler),
            scenarios,
        }
    }
}

/// How to print results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Gradescope,
}

const PASS: Style = AnsiColor::Green.on_default().bold();
const FAIL: Style = AnsiColor::Red.on_default().bold();
const DIM: Style = Style::new().dimmed();
const BOLD: Style = Style::new().bold();

/// Human-readable: one line per scenario, then the details of failures.
pub fn text(out: &mut dyn Write, results: &[LabResult]) -> std::io::Result<()> {
    for r in results {
        writeln!(
            out,
            "{BOLD}lab {} — {}{BOLD:#} {DIM}({}){DIM:#}",
            r.lab.dir(),
            r.lab.title,
            r.tree
        )?;
        if let Some(compiler) = &r.build_error {
            writeln!(out, "{FAIL}the lab did not compile:{FAIL:#}")?;
            for line in compiler.lines() {
                writeln!(out, "  {line}")?;
            }
        }
        let width = r.scenarios.iter().map(|s| s.name.len()).max().unwrap_or(0);
        for s in &r.scenarios {
            let (tag, style) = if s.passed {
                ("PASS", PASS)
            } else {
                ("FAIL", FAIL)
            };
            writeln!(
                out,
                "  {style}{tag}{style:#}  {:width$}  {}/{} {}  {DIM}{:.2}s{DIM:#}",
                s.name,
                s.score(),
                s.points,
                if s.points == 1 { "point " } else { "points" },
                s.duration.as_secs_f64(),
            )?;
        }
        for s in r.scenarios.iter().filter(|s| !s.passed) {
            if r.build_error.is_some() {
                break;
            }
            writeln!(out, "\n{FAIL}{}{FAIL:#}", s.name)?;
            for line in s.message().lines() {
                writeln!(out, "  {line}")?;
            }
        }
        let style = if r.all_passed() { PASS } else { FAIL };
        writeln!(
            out,
            "\n  {style}score {}/{}{style:#}\n",
            r.score(),
            r.max_score()
        )?;
    }
    if results.len() > 1 {
        let score: u32 = results.iter().map(LabResult::score).sum();
        let max: u32 = results.iter().map(LabResult::max_score).sum();
        writeln!(out, "{BOLD}total {score}/{max}{BOLD:#}")?;
    }
    Ok(())
}

/// The checker's own JSON: per lab `id`, `score`, `max_score`, `scenarios`.
pub fn json(results: &[LabResult]) -> Value {
    let labs: Vec<Value> = results
        .iter()
        .map(|r| {
            json!({
                "id": r.lab.dir(),
                "title": r.lab.title,
                "tree": r.tree,
                "score": r.score(),
                "max_score": r.max_score(),
                "build_error": r.build_error,
                "scenarios": r.scenarios.iter().map(|s| json!({
                    "name": s.name,
                    "passed": s.passed,
                    "score": s.score(),
                    "max_score": s.points,
                    "duration_ms": s.duration.as_millis() as u64,
                    "message": s.message(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "score": results.iter().map(LabResult::score).sum::<u32>(),
        "max_score": results.iter().map(LabResult::max_score).sum::<u32>(),
        "labs": labs,
    })
}

/// Gradescope's `results.json`: one test per scenario.
pub fn gradescope(results: &[LabResult]) -> Value {
    let mut tests = Vec::new();
    for r in results {
        for s in &r.scenarios {
            let mut output = s.message();
            if let Some(compiler) = &r.build_error {
                output = format!("The lab did not compile:\n{compiler}");
            }
            tests.push(json!({
                "name": format!("{} {}", r.lab.dir(), s.name),
                "score": s.score(),
                "max_score": s.points,
                "status": if s.passed { "passed" } else { "failed" },
                "output": output,
                "visibility": "visible",
            }));
        }
    }
    json!({
        "score": results.iter().map(LabResult::score).sum::<u32>(),
        "output": format!("{} of {} labs fully passing", results.iter().filter(|r| r.all_passed()).count(), results.len()),
        "tests": tests,
    })
}
