//! `cargo lab check`: build a lab, run its scenarios, report.

use std::io::Write;

use anyhow::{Context, Result};

use super::{Verdict, note, stderr_color};
use crate::compile::{self, Built};
use crate::labs::{self, Lab};
use crate::report::{self, Format, LabResult, Report};
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
    let mut results = Vec::new();
    for lab in labs {
        let result = check_lab(
            tree,
            lab,
            scenario,
            format == Format::Text && stderr_color(),
        )?;
        if tree.kind == TreeKind::Labs {
            crate::progress::record(&result);
        }
        results.push(result);
    }
    print(&results, format)?;
    verdict(&results)
}

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
    let staged = stage::stage(tree, lab, None)?;
    note(&format!("building {}/{} ...", tree.label, lab.dir()));
    match compile::build(&staged, color)? {
        Built::Failed(compiler) => Ok(LabResult::not_built(lab, &tree.label, compiler, only)),
        Built::Ok(bins) => {
            note(&format!(
                "running {} scenario(s) ...",
                only.map_or(lab.scenarios.len(), |_| 1)
            ));
            Ok(runner::run_lab(lab, &tree.label, &bins, only))
        }
    }
}

pub fn print(results: &[LabResult], format: Format) -> Result<()> {
    let report = Report::of(results);
    let mut out = anstream::stdout();
    match format {
        Format::Text => report::text(&mut out, &report)?,
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report.to_json())?)?,
        Format::Gradescope => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&report::gradescope(&report))?
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
