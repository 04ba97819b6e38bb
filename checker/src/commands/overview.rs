//! `cargo lab`: the course at a glance, and what to do next.

use std::io::Write;

use anstyle::{AnsiColor, Style};
use anyhow::Result;

use super::Verdict;
use crate::labs;
use crate::progress;

const DONE: Style = AnsiColor::Green.on_default().bold();
const TODO: Style = AnsiColor::Yellow.on_default();
const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

pub fn run() -> Result<Verdict> {
    let record = progress::load();
    let mut out = anstream::stdout();
    writeln!(
        out,
        "{BOLD}Unix interprocess communication, in Rust{BOLD:#}\n"
    )?;
    let mut next = None;
    let id_width = labs::ALL.iter().map(|l| l.dir().len()).max().unwrap_or(0);
    let title_width = labs::ALL.iter().map(|l| l.title.len()).max().unwrap_or(0);
    for lab in labs::ALL {
        let id = lab.dir();
        let max = lab.max_score();
        let (mark, status) = match progress::passed(&record, &id) {
            Some(passed) if progress::checked(&record, &id) => {
                let score: u32 = lab
                    .scenarios
                    .iter()
                    .filter(|s| passed.iter().any(|p| p == s.name))
                    .map(|s| s.points)
                    .sum();
                if score == max {
                    (format!("{DONE}done{DONE:#}"), format!("{score}/{max}"))
                } else {
                    (format!("{TODO}....{TODO:#}"), format!("{score}/{max}"))
                }
            }
            _ => (format!("{DIM}    {DIM:#}"), "not checked yet".to_string()),
        };
        if next.is_none() && !status.starts_with(&format!("{max}/")) {
            next = Some(lab);
        }
        writeln!(
            out,
            "  {mark}  {id:<id_width$}  {:<title_width$}  {status}",
            lab.title
        )?;
    }
    writeln!(out)?;
    match next {
        Some(lab) => {
            writeln!(
                out,
                "Next: lab {}. Read its chapter in the book, edit labs/{}/src/lib.rs, then run",
                lab.dir(),
                lab.dir()
            )?;
            writeln!(
                out,
                "  cargo lab check {}      (or `cargo lab watch {}` to check on every save)",
                lab.number, lab.number
            )?;
            writeln!(
                out,
                "  cargo lab hint {}       when you are stuck",
                lab.number
            )?;
        }
        None => writeln!(out, "Every lab passes. Well done.")?,
    }
    writeln!(
        out,
        "\nThe book: `mdbook serve book` (see README.md). All commands: `cargo lab --help`."
    )?;
    Ok(Verdict::Passed)
}
