//! `cargo lab watch`: check a lab again whenever one of its files changes.

use std::io::{IsTerminal, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use notify::{RecursiveMode, Watcher};

use super::check::{check_lab, print};
use super::{Verdict, stderr_color};
use crate::labs;
use crate::report::{Format, LabResult};
use crate::stage::{Tree, TreeKind};

pub fn run(name: &str, tree: &Tree) -> Result<Verdict> {
    let lab = labs::find(name)?;
    let dir = tree.labs_dir.join(lab.dir()).join("src");
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| e.kind.is_modify() || e.kind.is_create() || e.kind.is_remove()) {
            let _ = tx.send(());
        }
    })
    .context("starting the file watcher")?;
    watcher
        .watch(&dir, RecursiveMode::Recursive)
        .with_context(|| format!("watching {}", dir.display()))?;
    let on_terminal = std::io::stdout().is_terminal();
    let mut first = true;
    loop {
        if on_terminal {
            // Each run on a clean screen, its report from the top.
            print!("\x1b[H\x1b[2J");
            std::io::stdout().flush().context("clearing the screen")?;
        } else if !first {
            eprintln!("\n--- change seen, checking again ---\n");
        }
        first = false;
        eprintln!("Watching {} for changes; Ctrl-C to stop.", dir.display());
        let began = Instant::now();
        let result = check_lab(tree, lab, None, stderr_color())?;
        if tree.kind == TreeKind::Labs {
            crate::progress::record(&result);
        }
        print(std::slice::from_ref(&result), Format::Text)?;
        eprintln!("{}", summary(&result, began.elapsed(), &clock()));
        // Wait for a change, then let a burst of saves settle.
        rx.recv().context("the file watcher stopped")?;
        while rx.recv_timeout(Duration::from_millis(200)).is_ok() {}
    }
}

/// The line that ends each run: when, what passed, how long it took.
fn summary(result: &LabResult, took: Duration, at: &str) -> String {
    let lab = result.lab.dir();
    let seconds = took.as_secs_f64();
    if result.build_error.is_some() {
        return format!("[{at}] {lab}: does not compile (checked in {seconds:.1}s)");
    }
    let passed = result.scenarios.iter().filter(|s| s.passed).count();
    let total = result.scenarios.len();
    format!(
        "[{at}] {lab}: {passed} of {total} scenarios pass, {}/{} points (checked in {seconds:.1}s)",
        result.score(),
        result.max_score()
    )
}

/// The local time of day, `HH:MM:SS`.
fn clock() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    // SAFETY: `tm` is plain data, for which all zeroes is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r fills the `tm` it is given, and reads `now`.
    if unsafe { libc::localtime_r(&now, &mut tm) }.is_null() {
        return "--:--:--".into();
    }
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_run_ends_with_one_line() {
        let lab = labs::find("1").unwrap();
        let built = LabResult::not_built(lab, "labs", "error[E0425]".into(), None);
        let line = summary(&built, Duration::from_millis(1234), "10:11:12");
        assert_eq!(
            line,
            "[10:11:12] 01-fork: does not compile (checked in 1.2s)"
        );
        assert!(!line.contains('\n'));
        let clock = clock();
        assert_eq!(clock.len(), 8, "{clock}");
    }
}
