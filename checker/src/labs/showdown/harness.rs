//! The harness: `bench` run twice with counts and sizes the checker
//! picks; its CSV consistent with itself, with the arguments and with the
//! time the runs took, measured (two runs differ), and physically possible.

use std::time::{Duration, Instant};

use rand::Rng;

use crate::scenario::{Failure, Outcome, Run};
use crate::showdown_csv::{self, HEADER, MECHANISMS, Row};

struct Bench {
    rows: Vec<Row>,
    took: Duration,
}

fn bench_once(
    run: &mut Run,
    n: usize,
    size: usize,
    small: usize,
    out: &str,
) -> Result<Bench, Failure> {
    let args: Vec<String> = [
        "--messages",
        &n.to_string(),
        "--size",
        &size.to_string(),
        "--small",
        &small.to_string(),
        "--out",
        out,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let started = Instant::now();
    let mut p = run.spawn("bench", &args)?;
    let printed: Vec<String> = run
        .rest(&mut p, "bench to print its table and exit")?
        .into_iter()
        .map(|l| l.text)
        .collect();
    run.expect_success(&mut p)?;
    let took = started.elapsed();
    let what = format!("`bench {}`", args.join(" "));
    for name in std::iter::once("floor").chain(MECHANISMS) {
        if !printed.iter().any(|l| l.starts_with(name)) {
            return Err(Failure::wrong(
                format!("{what} to print a table with a line for {name}"),
                format!("no line starts with {name}"),
            ));
        }
    }
    let text = std::fs::read_to_string(run.sandbox.tmp.join(out)).map_err(|e| {
        Failure::wrong(
            format!("{what} to write {out}"),
            format!("cannot read it: {e}"),
        )
    })?;
    let rows = showdown_csv::parse(&text)
        .map_err(|e| Failure::wrong(format!("{out}: CSV with the columns {HEADER}"), e))?;
    Ok(Bench { rows, took })
}

fn close(printed: f64, computed: f64) -> bool {
    (printed - computed).abs() <= 0.002 + 0.005 * computed.abs()
}

/// The CSV agrees with itself, with the arguments, and with the time the
/// run took.
fn consistent(b: &Bench, n: usize, size: usize, small: usize, out: &str) -> Outcome {
    let floor = &b.rows[0];
    for r in &b.rows {
        let bad = |expected: String, happened: String| {
            Err(Failure::wrong(
                format!("{out}, row {}: {expected}", r.name),
                happened,
            ))
        };
        if r.messages != n as u64 || r.large_bytes != size as u64 {
            return bad(
                format!(
                    "messages = {n} and large_bytes = {size}, as asked with --messages and --size"
                ),
                format!("messages = {}, large_bytes = {}", r.messages, r.large_bytes),
            );
        }
        if r.name != "floor" && r.small_bytes != small as u64 {
            return bad(
                format!("small_bytes = {small}, as asked with --small"),
                format!("small_bytes = {}", r.small_bytes),
            );
        }
        if r.median_ns <= 0.0 || r.mb_per_s <= 0.0 || r.cpu_ns <= 0.0 {
            return bad(
                "a median, a throughput and a CPU time above 0".into(),
                format!(
                    "median_ns = {}, mb_per_s = {}, cpu_ns_per_msg = {}",
                    r.median_ns, r.mb_per_s, r.cpu_ns
                ),
            );
        }
        if r.p99_ns < r.median_ns {
            return bad(
                "p99_ns at least median_ns".into(),
                format!("median {} ns, p99 {} ns", r.median_ns, r.p99_ns),
            )
            .map_err(|f: Failure| {
                f.because("the samples must be sorted before picking ranks: the 99th percentile is never below the median")
            });
        }
        let ratios = [
            (
                "latency_ratio",
                r.latency_ratio,
                r.median_ns / floor.median_ns,
            ),
            (
                "throughput_ratio",
                r.throughput_ratio,
                r.mb_per_s / floor.mb_per_s,
            ),
            ("cpu_ratio", r.cpu_ratio, r.cpu_ns / floor.cpu_ns),
        ];
        for (name, printed, computed) in ratios {
            if !close(printed, computed) {
                return bad(
                    format!("{name} = the figure divided by the floor's, {computed:.3}"),
                    format!("{name} = {printed}"),
                );
            }
        }
    }
    // Every round trip and every one-way run happened inside the run: at
    // least half the round trips took the median or more, and each of the
    // three one-way runs (the best is kept) took at least the bytes over
    // the best throughput.
    let (mut round_trips, mut one_way) = (0.0, 0.0);
    for r in &b.rows {
        round_trips += n as f64 / 2.0 * r.median_ns / 1e9;
        one_way += RUNS * (n * size) as f64 / (r.mb_per_s.max(0.1) * 1e6) * 0.95;
    }
    let took = b.took.as_secs_f64();
    if round_trips + one_way > took + 0.05 {
        let failure = Failure::wrong(
            format!("figures that fit in the {took:.2} s the run took"),
            format!(
                "at those medians, half the round trips alone take {round_trips:.2} s, and the \
                 one-way runs at those throughputs {one_way:.2} s"
            ),
        );
        return Err(if round_trips > took {
            failure
                .because(format!(
                    "the per-message times do not add up: the samples describe more time than \
                     passed, so they were not measured one round trip each. A clock started once \
                     before the loop makes each sample the time since the first send (they grow, \
                     and their median is about {n}/2 round trips)"
                ))
                .hint("In `round_trips`, read `Instant::now()` inside the loop, right before each send, and push `elapsed()` right after its echo arrived.")
        } else {
            failure.because("these figures were not measured: they describe more time than passed")
        });
    }
    Ok(())
}

/// The one-way runs per mechanism in `bench` (the best is reported).
const RUNS: f64 = 3.0;

/// Bounds no measurement can cross, with margins for a loaded machine,
/// where a floor measured in a bad moment may be several times off (so
/// each floor is the better of the two runs'):
///
/// - a blocking mechanism's round trip wakes the other process and waits
///   to be woken, as the futex ping-pong of the floor does, and does more:
///   its median is not far below the floor's;
/// - in a round trip the two processes take turns: its wall time is not
///   far below the CPU time they used for it (load only adds wall time);
/// - a throughput copies every byte in and out, as the copy floor does:
///   not far above it (the ring, with little else to do, comes close to
///   it, and beats a floor measured in a bad moment), and never above any
///   memory's bandwidth.
const BELOW_FUTEX_FLOOR: f64 = 0.15;
const BELOW_CPU: f64 = 0.25;
const ABOVE_COPY_FLOOR: f64 = 4.0;
const RING_ABOVE_COPY_FLOOR: f64 = 50.0;
const ABOVE_ANY_MEMORY_MB_S: f64 = 500_000.0;

/// Figures that no measurement can give, in either run.
fn possible(runs: [(&Bench, &str); 2]) -> Outcome {
    let futex = runs
        .iter()
        .map(|(b, _)| b.rows[0].median_ns)
        .fold(f64::INFINITY, f64::min);
    let copy = runs
        .iter()
        .map(|(b, _)| b.rows[0].mb_per_s)
        .fold(0.0, f64::max);
    for (b, out) in runs {
        for r in &b.rows[1..] {
            let blocking = r.name != "ring";
            let below_floor = r.median_ns < futex * BELOW_FUTEX_FLOOR;
            let below_cpu = r.median_ns < r.cpu_ns * BELOW_CPU;
            if blocking && (below_floor || below_cpu) {
                let happened = if below_floor {
                    format!(
                        "its median is {:.0} ns, {:.2} of the floor: less than one wake-up costs",
                        r.median_ns,
                        r.median_ns / futex
                    )
                } else {
                    format!(
                        "its median is {:.0} ns, while the two processes used {:.0} ns of CPU per \
                         round trip",
                        r.median_ns, r.cpu_ns
                    )
                };
                return Err(Failure::wrong(
                    format!(
                        "{out}: a round trip through the {} to take about the futex floor's {:.0} ns \
                         or more (it wakes the other process and waits to be woken, as the floor \
                         does), and about the CPU time it uses",
                        r.name, futex
                    ),
                    happened,
                )
                .because(
                    "each sample timed less than a round trip: the clock was read before the echo \
                     came back (a send alone costs a system call, not a wake-up of another process)",
                )
                .hint("In `round_trips`, start the clock right before `send` and read it only after `recv` has returned the echo."));
            }
            let most = if blocking {
                ABOVE_COPY_FLOOR
            } else {
                RING_ABOVE_COPY_FLOOR
            } * copy;
            if r.mb_per_s > most.min(ABOVE_ANY_MEMORY_MB_S) {
                return Err(Failure::wrong(
                    format!(
                        "{out}: the {}'s throughput at most about the copy floor's {:.0} MB/s: every \
                         byte is copied into it and out of it, as in the floor",
                        r.name, copy
                    ),
                    format!(
                        "{:.0} MB/s, {:.1} times the floor",
                        r.mb_per_s,
                        r.mb_per_s / copy
                    ),
                )
                .because(
                    "the time the bytes were divided by is shorter than the time they took: `one_way` \
                     must return the time from the first send until the acknowledgement of the last \
                     message, for all of them (not the time per message, nor the sends alone)",
                )
                .hint("In `one_way`, read the clock once before the first send and once after the acknowledgement, and return that whole duration."));
            }
        }
    }
    Ok(())
}

pub(super) fn bench_is_measured(run: &mut Run) -> Outcome {
    let n1 = run.rng.random_range(120..200);
    // Very different counts: per-message times that were not measured one
    // message each grow with the count (as its square, for a clock
    // started once), measured ones do not.
    let n2 = run.rng.random_range(350..500);
    let sizes = [16384, 32768, 65536, 100_000];
    let s1 = sizes[run.rng.random_range(0..sizes.len())];
    let s2 = sizes
        .iter()
        .copied()
        .filter(|&s| s != s1)
        .nth(run.rng.random_range(0..3))
        .unwrap_or(65536);
    let (b1, b2) = (run.rng.random_range(8..200), run.rng.random_range(8..200));
    let first = bench_once(run, n1, s1, b1, "first.csv")?;
    consistent(&first, n1, s1, b1, "first.csv")?;
    let second = bench_once(run, n2, s2, b2, "second.csv")?;
    consistent(&second, n2, s2, b2, "second.csv")?;
    let same = first
        .rows
        .iter()
        .zip(&second.rows)
        .all(|(a, b)| a.median_ns == b.median_ns && a.p99_ns == b.p99_ns);
    if same {
        return Err(Failure::wrong(
            "latencies that differ between two runs, as measured times always do",
            format!(
                "both runs report the same median and p99 for every row (e.g. {} ns and {} ns for pipe)",
                first.rows[1].median_ns, first.rows[1].p99_ns
            ),
        )
        .because("the latencies were not measured: compute them from the samples (sort, then pick the ranks), never from constants"));
    }
    possible([(&first, "first.csv"), (&second, "second.csv")])
}
