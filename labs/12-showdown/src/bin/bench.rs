//! The harness: measures every mechanism against the floors, prints a
//! table and bar charts, and writes the figures to a CSV file.
//!
//! Usage: `bench [--messages N] [--size BYTES] [--small BYTES] [--out FILE]`
//!
//! For the floors and for each mechanism, in one run:
//! - N round trips of a SMALL-byte message (default 64): median and 99th
//!   percentile;
//! - N one-way messages of SIZE bytes (default 65536): MB/s;
//! - the CPU time of both processes per round trip.
//!
//! The floors: a futex ping-pong between two processes (latency, CPU) and
//! a memory copy of SIZE bytes (throughput). Each figure is also given as
//! a ratio to its floor: absolute times vary from machine to machine and
//! run to run, ratios much less.

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
        mb_per_s: given::copy_floor(o.size, o.messages),
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
    let (child, mut t) = given::connect(mech, |t| showdown::sink(t, n))?;
    let took = showdown::one_way(t.as_mut(), n, o.size)?;
    drop(t);
    given::join(child)?;

    Ok(Row {
        name: mech.name().into(),
        messages: n,
        small_bytes: o.small,
        median_ns: ns(lat.median),
        p99_ns: ns(lat.p99),
        large_bytes: o.size,
        mb_per_s: (n * o.size) as f64 / took.as_secs_f64().max(1e-9) / 1e6,
        cpu_ns_per_msg: per_message(cpu, n),
    })
}

fn main() -> ExitCode {
    given::main_with(|| {
        let o = options()?;
        let floor = floor(&o)?;
        let mut rows = Vec::new();
        for mech in Mechanism::ALL {
            rows.push(measure(mech, &o).with_context(|| format!("measuring {}", mech.name()))?);
        }
        print!("{}", given::table(&floor, &rows));
        std::fs::write(&o.out, given::csv(&floor, &rows))
            .with_context(|| format!("writing {}", o.out))?;
        println!("\nwritten to {}", o.out);
        Ok(())
    })
}
