//! Results, and the ways of showing them. A check ends with
//! [`LabResult`]s, which keep each failure whole (its kind, for the
//! verdict); [`Report`] is the plain, typed form every output renders: text
//! for people, the checker's JSON for scripts, Gradescope's
//! `results.json`, and `cargo lab grade`'s per-student and summary files
//! (which read the JSON back with [`Report::from_json`]).

use std::io::Write;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use anyhow::{Context, Result};
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

/// A finished check as data: the labs checked, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    pub labs: Vec<LabReport>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LabReport {
    /// `NN-slug`.
    pub id: String,
    pub title: String,
    /// Which tree was checked, as the user named it: `labs`, `solutions`, a path.
    pub tree: String,
    /// The compiler's output when the lab did not build.
    pub build_error: Option<String>,
    pub scenarios: Vec<ScenarioReport>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioReport {
    pub name: String,
    pub passed: bool,
    pub points: u32,
    pub duration: Duration,
    /// What went wrong, with the hint; empty when it passed.
    pub message: String,
}

impl ScenarioReport {
    pub fn score(&self) -> u32 {
        if self.passed { self.points } else { 0 }
    }
}

impl LabReport {
    pub fn score(&self) -> u32 {
        self.scenarios.iter().map(ScenarioReport::score).sum()
    }

    pub fn max_score(&self) -> u32 {
        self.scenarios.iter().map(|s| s.points).sum()
    }

    pub fn all_passed(&self) -> bool {
        self.build_error.is_none() && self.scenarios.iter().all(|s| s.passed)
    }
}

impl Report {
    pub fn of(results: &[LabResult]) -> Report {
        let labs = results
            .iter()
            .map(|r| LabReport {
                id: r.lab.dir(),
                title: r.lab.title.to_string(),
                tree: r.tree.clone(),
                build_error: r.build_error.clone(),
                scenarios: r
                    .scenarios
                    .iter()
                    .map(|s| ScenarioReport {
                        name: s.name.to_string(),
                        passed: s.passed,
                        points: s.points,
                        duration: s.duration,
                        message: s.message(),
                    })
                    .collect(),
            })
            .collect();
        Report { labs }
    }

    pub fn score(&self) -> u32 {
        self.labs.iter().map(LabReport::score).sum()
    }

    pub fn max_score(&self) -> u32 {
        self.labs.iter().map(LabReport::max_score).sum()
    }

    /// The lab `id`, if it was checked.
    pub fn lab(&self, id: &str) -> Option<&LabReport> {
        self.labs.iter().find(|l| l.id == id)
    }

    /// Adds the labs of `other` (checked apart, e.g. by another process),
    /// keeping the labs in the order of their ids.
    pub fn merge(&mut self, other: Report) {
        self.labs.extend(other.labs);
        self.labs.sort_by(|a, b| a.id.cmp(&b.id));
    }

    /// The checker's own JSON: per lab `id`, `score`, `max_score`, `scenarios`.
    pub fn to_json(&self) -> Value {
        let labs: Vec<Value> = self
            .labs
            .iter()
            .map(|l| {
                json!({
                    "id": l.id,
                    "title": l.title,
                    "tree": l.tree,
                    "score": l.score(),
                    "max_score": l.max_score(),
                    "build_error": l.build_error,
                    "scenarios": l.scenarios.iter().map(|s| json!({
                        "name": s.name,
                        "passed": s.passed,
                        "score": s.score(),
                        "max_score": s.points,
                        "duration_ms": u64::try_from(s.duration.as_millis()).unwrap_or(u64::MAX),
                        "message": s.message,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "score": self.score(),
            "max_score": self.max_score(),
            "labs": labs,
        })
    }

    /// Reads back what [`Report::to_json`] wrote (scores are recomputed
    /// from each scenario's `passed` and `max_score`).
    pub fn from_json(value: &Value) -> Result<Report> {
        fn text(v: &Value, key: &str) -> Result<String> {
            v[key]
                .as_str()
                .map(str::to_string)
                .with_context(|| format!("`{key}` is not a string"))
        }
        fn number(v: &Value, key: &str) -> Result<u64> {
            v[key]
                .as_u64()
                .with_context(|| format!("`{key}` is not a whole number"))
        }
        let labs = value["labs"].as_array().context("no `labs` array")?;
        let labs = labs
            .iter()
            .map(|l| -> Result<LabReport> {
                let scenarios = l["scenarios"]
                    .as_array()
                    .context("no `scenarios` array")?
                    .iter()
                    .map(|s| -> Result<ScenarioReport> {
                        Ok(ScenarioReport {
                            name: text(s, "name")?,
                            passed: s["passed"]
                                .as_bool()
                                .context("`passed` is not true or false")?,
                            points: u32::try_from(number(s, "max_score")?)
                                .context("`max_score` is too large")?,
                            duration: Duration::from_millis(number(s, "duration_ms")?),
                            message: text(s, "message")?,
                        })
                    })
                    .collect::<Result<_>>()?;
                Ok(LabReport {
                    id: text(l, "id")?,
                    title: text(l, "title")?,
                    tree: text(l, "tree")?,
                    build_error: l["build_error"].as_str().map(str::to_string),
                    scenarios,
                })
            })
            .collect::<Result<_>>()
            .context("reading the checker's JSON report")?;
        Ok(Report { labs })
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
pub fn text(out: &mut dyn Write, report: &Report) -> std::io::Result<()> {
    for r in &report.labs {
        writeln!(
            out,
            "{BOLD}lab {} — {}{BOLD:#} {DIM}({}){DIM:#}",
            r.id, r.title, r.tree
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
            for line in s.message.lines() {
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
    if report.labs.len() > 1 {
        writeln!(
            out,
            "{BOLD}total {}/{}{BOLD:#}",
            report.score(),
            report.max_score()
        )?;
    }
    Ok(())
}

/// Gradescope's `results.json`: one test per scenario.
pub fn gradescope(report: &Report) -> Value {
    let mut tests = Vec::new();
    for r in &report.labs {
        for s in &r.scenarios {
            let output = match &r.build_error {
                Some(compiler) => format!("The lab did not compile:\n{compiler}"),
                None => s.message.clone(),
            };
            tests.push(json!({
                "name": format!("{} {}", r.id, s.name),
                "score": s.score(),
                "max_score": s.points,
                "status": if s.passed { "passed" } else { "failed" },
                "output": output,
                "visibility": "visible",
            }));
        }
    }
    json!({
        "score": report.score(),
        "output": format!("{} of {} labs fully passing", report.labs.iter().filter(|r| r.all_passed()).count(), report.labs.len()),
        "tests": tests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let scenario = |name: &str, passed: bool, message: &str| ScenarioReport {
            name: name.into(),
            passed,
            points: 2,
            duration: Duration::from_millis(1234),
            message: message.into(),
        };
        Report {
            labs: vec![
                LabReport {
                    id: "01-fork".into(),
                    title: "Processes".into(),
                    tree: "labs".into(),
                    build_error: None,
                    scenarios: vec![
                        scenario("a", true, ""),
                        scenario("b", false, "expected: x\nhappened: y"),
                    ],
                },
                LabReport {
                    id: "02-pipe".into(),
                    title: "Pipes".into(),
                    tree: "labs".into(),
                    build_error: Some("error[E0308]".into()),
                    scenarios: vec![scenario("c", false, "")],
                },
            ],
        }
    }

    #[test]
    fn the_json_reads_back_as_the_same_report() {
        let report = sample();
        let json = report.to_json();
        assert_eq!(
            (json["score"].as_u64(), json["max_score"].as_u64()),
            (Some(2), Some(6))
        );
        assert_eq!(json["labs"][0]["scenarios"][1]["duration_ms"], 1234);
        assert_eq!(Report::from_json(&json).unwrap(), report);
        assert!(Report::from_json(&json!({"error": "no"})).is_err());
    }

    #[test]
    fn merging_keeps_the_labs_in_order() {
        let mut first = sample();
        let second = Report {
            labs: vec![first.labs.remove(0)],
        };
        first.merge(second);
        let ids: Vec<&str> = first.labs.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids, ["01-fork", "02-pipe"]);
    }

    #[test]
    fn every_renderer_shows_the_same_scores() {
        let report = sample();
        let mut text = anstream::StripStream::new(Vec::new());
        super::text(&mut text, &report).unwrap();
        let text = String::from_utf8(text.into_inner()).unwrap();
        assert!(
            text.contains("score 2/4") && text.contains("total 2/6"),
            "{text}"
        );
        assert!(
            text.contains("the lab did not compile:\n  error[E0308]"),
            "{text}"
        );
        let g = gradescope(&report);
        assert_eq!(g["score"], 2);
        assert_eq!(g["output"], "0 of 2 labs fully passing");
        assert_eq!(g["tests"][2]["name"], "02-pipe c");
        assert_eq!(
            g["tests"][2]["output"],
            "The lab did not compile:\nerror[E0308]"
        );
    }
}
