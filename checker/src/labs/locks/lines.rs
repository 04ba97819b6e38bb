//! The printers: lines written in small pieces must not mix, and the lock
//! is held for one line at a time.

use rand::Rng;

use super::{finish, release_workers};
use crate::scenario::{Failure, Outcome, Run};

/// What `lines` printed: the lines, once the program has exited cleanly.
fn run_lines(run: &mut Run, n: usize, k: usize, len: usize) -> Result<Vec<String>, Failure> {
    let mut p = run.spawn("lines", &[n.to_string(), k.to_string(), len.to_string()])?;
    let (workers, ()) = release_workers(run, &mut p, n, |_| ())?;
    let lines: Vec<String> = run
        .rest(&mut p, "the printers to finish")?
        .into_iter()
        .map(|l| l.text)
        .collect();
    finish(run, &mut p, &workers)?;
    Ok(lines)
}

/// Every line whole: LEN copies of one of the N letters, K lines each.
fn expect_whole(lines: &[String], n: usize, k: usize, len: usize) -> Outcome {
    let letters: Vec<char> = (0..n).map(|i| (b'A' + i as u8) as char).collect();
    for (i, line) in lines.iter().enumerate() {
        let first = line.chars().next().unwrap_or(' ');
        let uniform = letters.contains(&first) && line.chars().all(|c| c == first);
        if !uniform || line.len() != len {
            let shown: String = line.chars().take(100).collect();
            let more = if line.len() > 100 { "..." } else { "" };
            let what = if uniform {
                format!(
                    "line {} is {} letters long: `{shown}{more}`",
                    i + 1,
                    line.len()
                )
            } else {
                format!("line {} mixes letters: `{shown}{more}`", i + 1)
            };
            return Err(Failure::wrong(
                format!("every line to be {len} copies of one letter"),
                what,
            )
            .because(
                "another printer wrote in the middle of a line: a line goes out in several small \
                 write() calls, so the whole line is the critical section. Hold the lock from its \
                 first piece to its last",
            ));
        }
    }
    for letter in &letters {
        let count = lines.iter().filter(|l| l.starts_with(*letter)).count();
        if count != k {
            return Err(Failure::wrong(
                format!("{k} lines of {letter}"),
                format!("{count} lines of {letter}, {} lines in all", lines.len()),
            ));
        }
    }
    Ok(())
}

pub fn lines_stay_whole(run: &mut Run) -> Outcome {
    let n = run.rng.random_range(6..=8);
    let k = run.rng.random_range(10..=14);
    let len = run.rng.random_range(60..=120);
    let lines = run_lines(run, n, k, len)?;
    expect_whole(&lines, n, k, len)
}

pub fn lock_only_around_line(run: &mut Run) -> Outcome {
    let n = run.rng.random_range(4..=6);
    let k = run.rng.random_range(8..=12);
    let len = run.rng.random_range(40..=80);
    let lines = run_lines(run, n, k, len)?;
    expect_whole(&lines, n, k, len)?;
    // Runs of lines from the same printer. With the lock held for one line
    // at a time, printers take turns; held for all of a printer's lines,
    // the output is exactly one run per printer.
    let mut runs = 0;
    let mut previous = None;
    for line in &lines {
        let letter = line.chars().next();
        if letter != previous {
            runs += 1;
            previous = letter;
        }
    }
    if runs <= n {
        return Err(Failure::wrong(
            "the printers to take turns: the lock held for one line, then released",
            format!(
                "{} lines came in {runs} blocks, one printer after the other",
                lines.len()
            ),
        )
        .because(
            "each printer kept the lock for all its lines, so the others could not even do their \
             work outside the critical section meanwhile. Take the lock inside the loop, for the \
             line only",
        ));
    }
    Ok(())
}
