//! `cargo lab bench`: builds lab 12 (the showdown) with optimisations and
//! runs its harness, which prints the table and writes the CSV; then draws
//! the CSV as a chart, an SVG file beside it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::{Verdict, note, stderr_color};
use crate::compile::{self, Built};
use crate::labs;
use crate::stage::{self, Tree};

/// The lab whose harness this runs, and its program.
const LAB: &str = "showdown";
const PROGRAM: &str = "bench";

pub fn run(tree: &Tree, messages: Option<usize>, out: Option<&Path>) -> Result<Verdict> {
    let lab = labs::find(LAB)?;
    let staged = stage::stage(tree, lab, None)?;
    note(&format!(
        "building {}/{} with optimisations ...",
        tree.label,
        lab.dir()
    ));
    let bins = match compile::build_release(&staged, stderr_color())? {
        Built::Ok(bins) => bins,
        Built::Failed(compiler) => {
            eprintln!("{compiler}");
            bail!("{}/{} does not build", tree.label, lab.dir());
        }
    };
    let program = bins
        .get(PROGRAM)
        .with_context(|| format!("lab {} has no program {PROGRAM}", lab.dir()))?;

    // FIFOs go in the current directory: give the harness one of its own.
    let dir = std::env::temp_dir().join(format!("lab-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let out = match out {
        Some(p) => absolute(p)?,
        None => absolute(Path::new("showdown.csv"))?,
    };
    let mut cmd = Command::new(program);
    cmd.current_dir(&dir)
        .env(
            lab_program::env::IPC_PREFIX,
            format!("/lab-bench-{}-", std::process::id()),
        )
        .env(lab_program::env::TMP, &dir)
        .arg("--out")
        .arg(&out);
    if let Some(n) = messages {
        cmd.arg("--messages").arg(n.to_string());
    }
    note(&format!("running {} (this takes a while) ...", PROGRAM));
    let status = cmd
        .status()
        .with_context(|| format!("running {}", program.display()));
    let _ = std::fs::remove_dir_all(&dir);
    let status = status?;
    if status.success() {
        draw(&out)?;
        return Ok(Verdict::Passed);
    }
    // A panic is most often a `todo!()` still in the lab.
    if status.code() == Some(101) {
        eprintln!(
            "{PROGRAM} stopped on a panic (above): the benchmark needs every part of lab {} \
             working; `cargo lab check {}` shows what is left",
            lab.number, lab.number
        );
    }
    Ok(Verdict::Failed)
}

/// Draws the CSV at `csv` as a chart, in the same place with `.svg`.
fn draw(csv: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(csv).with_context(|| format!("reading {}", csv.display()))?;
    let (bars, small, large) = crate::chart::bars(&text)
        .map_err(|e| anyhow::anyhow!("{}: not the harness's CSV: {e}", csv.display()))?;
    // Beside the CSV, never over it (`--out results.svg`).
    let mut svg = csv.with_extension("svg");
    if svg == csv {
        let mut name = csv.as_os_str().to_owned();
        name.push(".svg");
        svg = PathBuf::from(name);
    }
    std::fs::write(&svg, crate::chart::svg(&bars, small, large))
        .with_context(|| format!("writing {}", svg.display()))?;
    writeln!(std::io::stdout(), "chart written to {}", svg.display())
        .context("writing to stdout")?;
    Ok(())
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("the current directory")?
        .join(p))
}
