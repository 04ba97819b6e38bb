//! The harness: measures every mechanism against the floors, prints a
//! table and bar charts, and writes the figures to a CSV file.
//!
//! Usage: `bench [--messages N] [--size BYTES] [--small BYTES] [--out FILE]`
//!
//! For the floors and for each mechanism, in one run:
//! - N round trips of a SMALL-byte message (default 64): median and 99th
//!   percentile;
//! - N one-way messages of SIZE bytes (default 65536): MB/s, the best of
//!   three runs;
//! - the CPU time of both processes per round trip.
//!
//! The floors: a futex ping-pong between two processes (latency, CPU), and
//! SIZE bytes written by one process and copied out by another, on
//! another core (throughput). Each figure is also given as a ratio to its
//! floor: absolute times vary from machine to machine and run to run,
//! ratios much less. For scale, it also prints the bandwidth of a copy
//! within one process.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use showdown::given::{self, Row};
use showdown::{Latency, Mechanism};

struct Options {
    messages: usize,
    size: usize,
    small: usize,
    out: String,
}

fn options() -> Result<Options> {
    let mut o = Options {
        messages: 10_000,
        size: 64 << 10,
        small: 64,
        out: "showdown.csv".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--messages" => o.messages = value()?.parse().context("--messages")?,
            "--size" => o.size = value()?.parse().context("--size")?,
            "--small" => o.small = value()?.parse().context("--small")?,
            "--out" => o.out = value()?,
            _ => bail!("usage: bench [--messages N] [--size BYTES] [--small BYTES] [--out FILE]"),
        }
    }
    if o.messages == 0 || o.size == 0 {
        bail!("--messages and --size must be above 0");
    }
    Ok(o)
}

fn ns(d: Duration) -> u64 {
    d.as_nanos() as u64
}

fn per_message(cpu: Duration, n: usize) -> u64 {
    ns(cpu) / n as u64
}

/// Throughput is measured this many times, and the best run kept, for
/// the floor and every mechanism alike: a run that another program
/// disturbed says little about what the mechanism can do.
const RUNS: usize = 3;

fn best_of(mut run: impl FnMut() -> Result<f64>) -> Result<f64> {
    let mut best: f64 = 0.0;
    for _ in 0..RUNS {
        best = best.max(run()?);
    }
    Ok(best)
}

fn mb_per_s(bytes: usize, took: Duration) -> f64 {
    bytes as f64 / took.as_secs_f64().max(1e-9) / 1e6
}

fn floor(o: &Options) -> Result<Row> {
    let (mut samples, cpu) = given::futex_floor(o.messages)?;
    let lat = Latency::of(&mut samples)?;
    Ok(Row {
        name: "floor".into(),
        messages: o.messages,
        small_bytes: 0,
        median_ns: ns(lat.median),
        p99_ns: ns(lat.p99),
        large_bytes: o.size,
        mb_per_s: best_of(|| given::copy_floor(o.size, o.messages))?,
        cpu_ns_per_msg: per_message(cpu, o.messages),
    })
}

fn measure(mech: Mechanism, o: &Options) -> Result<Row> {
    let n = o.messages;
    // Round trips, with the CPU time of both processes around them: the
    // child is waited for before the second look, so its time counts.
    let cpu_before = given::cpu_time()?;
    let (child, mut t) = given::connect(mech, |t| showdown::echo(t, n))?;
    let mut samples = showdown::round_trips(t.as_mut(), n, o.small)?;
    drop(t);
    given::join(child)?;
    let cpu = given::cpu_time()? - cpu_before;
    let lat = Latency::of(&mut samples)?;

    // Throughput, one way.
    let best = best_of(|| {
        let (child, mut t) = given::connect(mech, |t| showdown::sink(t, n))?;
        let took = showdown::one_way(t.as_mut(), n, o.size)?;
        drop(t);
        given::join(child)?;
        Ok(mb_per_s(n * o.size, took))
    })?;

    Ok(Row {
        name: mech.name().into(),
        messages: n,
        small_bytes: o.small,
        median_ns: ns(lat.median),
        p99_ns: ns(lat.p99),
        large_bytes: o.size,
        mb_per_s: best,
        cpu_ns_per_msg: per_message(cpu, n),
    })
}

fn main() -> ExitCode {
    given::main_with(|| {
        let o = options()?;
        let mut text = String::new();
        if !given::pin_two_cores()? {
            text.push_str("(fewer than two CPUs: both sides of each measurement share one)\n\n");
        }
        let floor = floor(&o)?;
        let mut rows = Vec::new();
        for mech in Mechanism::ALL {
            rows.push(measure(mech, &o).with_context(|| format!("measuring {}", mech.name()))?);
        }
        let memcpy = given::memcpy_bandwidth(o.size, o.messages);
        std::fs::write(&o.out, given::csv(&floor, &rows))
            .with_context(|| format!("writing {}", o.out))?;
        text.push_str(&given::table(&floor, &rows, memcpy));
        text.push_str(&format!("\nwritten to {}\n", o.out));
        given::print(&text)
    })
}
