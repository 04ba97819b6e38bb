//! The bench (`bench N M`, given): its figures must be possible. Every
//! method but `none` loses nothing; the milliseconds add up to no more
//! than the program ran; nanoseconds per addition times the additions make
//! the milliseconds; and no method is faster than what it must do allows
//! (the file method makes several system calls per addition, one after
//! the other under the lock).

use std::time::{Duration, Instant};

use rand::Rng;

use crate::scenario::{Failure, Outcome, Run, quote_lines};

/// The fastest each method can possibly be, in nanoseconds per addition,
/// with the additions of N processes in parallel: generous floors, far
/// below any real machine.
const FLOORS: [(&str, f64); 4] = [
    ("none", 0.05),
    ("atomic", 0.1),
    ("mutex", 0.5),
    // read, write back and truncate, in series under the lock.
    ("file", 100.0),
];

struct Row {
    method: String,
    m: u64,
    total: u64,
    lost: u64,
    ms: f64,
    ns: f64,
}

fn parse(line: &str) -> Option<Row> {
    let w: Vec<&str> = line.split_whitespace().collect();
    if w.len() != 6 {
        return None;
    }
    Some(Row {
        method: w[0].to_string(),
        m: w[1].parse().ok()?,
        total: w[2].parse().ok()?,
        lost: w[3].parse().ok()?,
        ms: w[4].parse().ok()?,
        ns: w[5].parse().ok()?,
    })
}

pub fn bench_figures_hold_up(run: &mut Run) -> Outcome {
    let n: u64 = 2;
    let m: u64 = run.rng.random_range(150_000..250_000);
    let began = Instant::now();
    let mut p = run.spawn("bench", &[n.to_string(), m.to_string()])?;
    let lines: Vec<String> = run
        .rest(&mut p, "the bench's table")?
        .into_iter()
        .map(|l| l.text)
        .collect();
    run.expect_success(&mut p)?;
    let ran = began.elapsed();
    let rows: Vec<Row> = lines.iter().filter_map(|l| parse(l)).collect();
    let mut spent = Duration::ZERO;
    for (method, floor) in FLOORS {
        let Some(row) = rows.iter().find(|r| r.method == method) else {
            return Err(Failure::wrong(
                format!("a row for the method `{method}`"),
                format!("the bench printed {}", quote_lines(&lines)),
            ));
        };
        let adds = n * row.m;
        let row_text = format!(
            "`{method}`: M {} total {} lost {} ms {} ns {}",
            row.m, row.total, row.lost, row.ms, row.ns
        );
        if row.total > adds || row.lost != adds - row.total {
            return Err(Failure::wrong(
                format!("for `{method}`, total + lost = {n} x {} = {adds}", row.m),
                row_text,
            ));
        }
        if method != "none" && row.lost > 0 {
            return Err(
                Failure::wrong(format!("no addition lost with `{method}`"), row_text).because(
                    format!(
                        "the `{method}` addition lost updates under the bench's load: see the \
                 counter-{} scenario",
                        if method == "file" { "flock" } else { method }
                    ),
                ),
            );
        }
        // ms is printed to 0.1, ns to 0.1: compare with that slack.
        let from_ns = row.ns * adds as f64 / 1e6;
        if (from_ns - row.ms).abs() > 0.06 + 0.01 * row.ms {
            return Err(Failure::wrong(
                format!("for `{method}`, ns per add x {adds} additions = the milliseconds"),
                format!("{row_text}: {from_ns:.1} ms from the nanoseconds"),
            ));
        }
        if row.ns < floor {
            return Err(Failure::wrong(
                format!("`{method}` to take at least {floor} ns per addition"),
                row_text,
            )
            .because(format!(
                "{} ns per addition is faster than `{method}` can possibly be: the timed \
                 additions did not all happen",
                row.ns
            )));
        }
        spent += Duration::from_secs_f64(row.ms / 1e3);
    }
    if spent > ran {
        return Err(Failure::wrong(
            format!(
                "the methods' times to add up to no more than the {:.0} ms the bench ran",
                ran.as_secs_f64() * 1e3
            ),
            format!("they add up to {:.0} ms", spent.as_secs_f64() * 1e3),
        ));
    }
    Ok(())
}
