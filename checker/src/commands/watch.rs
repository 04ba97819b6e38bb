//! `cargo lab watch`: check a lab again whenever one of its files changes.

use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use notify::{RecursiveMode, Watcher};

use super::check::{check_lab, print};
use super::{Verdict, stderr_color};
use crate::labs;
use crate::report::Format;
use crate::stage::Tree;

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
    loop {
        let result = check_lab(tree, lab, None, stderr_color())?;
        if tree.key == "labs" {
            crate::progress::record(&result);
        }
        print(std::slice::from_ref(&result), Format::Text)?;
        eprintln!("Watching {} for changes. Ctrl-C to stop.", dir.display());
        // Wait for a change, then let a burst of saves settle.
        rx.recv().context("the file watcher stopped")?;
        while rx.recv_timeout(Duration::from_millis(200)).is_ok() {}
        eprintln!("\n--- change seen, checking again ---\n");
    }
}
