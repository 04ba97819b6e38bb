//! `cargo lab hint`: one hint at a time, for the first scenario not passing.

use anyhow::Result;

use super::Verdict;
use crate::labs;
use crate::progress;

pub fn run(name: &str) -> Result<Verdict> {
    let lab = labs::find(name)?;
    let record = progress::load();
    let passed = progress::passed(&record, &lab.dir()).unwrap_or_default();
    let Some(scenario) = lab
        .scenarios
        .iter()
        .find(|s| !passed.iter().any(|p| p == s.name))
    else {
        println!(
            "Every scenario of lab {} passed at its last check. No hint needed.",
            lab.dir()
        );
        return Ok(Verdict::Passed);
    };
    let shown = progress::next_hint(&lab.dir(), scenario.name);
    let step = shown.min(scenario.hints.len() - 1);
    println!(
        "lab {}, scenario {}: {}",
        lab.dir(),
        scenario.name,
        scenario.does
    );
    println!("It expects {}.\n", scenario.expects);
    println!(
        "Hint {} of {}: {}",
        step + 1,
        scenario.hints.len(),
        scenario.hints[step]
    );
    if step + 1 < scenario.hints.len() {
        println!(
            "\nRun `cargo lab hint {}` again for the next one.",
            lab.number
        );
    }
    Ok(Verdict::Passed)
}
