//! Times each way of adding to a shared total: N processes, M additions
//! each, for every method in turn (the file method makes M / 100).
//!
//! Usage: `bench N M`

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use locks::given::{self, Counter, Gate, Shared, join_workers, start_workers};
use locks::{FileTotal, add_atomic, add_locked};

const USAGE: &str = "bench N M";

fn main() -> ExitCode {
    given::main_with(|| {
        let args = given::args(USAGE, 2)?;
        let n: usize = given::number(&args[0], USAGE)?;
        let m: u64 = given::number(&args[1], USAGE)?;
        println!("{n} processes, each adding 1 to a shared total M times");
        println!(
            "{:<8} {:>10} {:>10} {:>10} {:>10} {:>14}",
            "method", "M", "total", "lost", "ms", "ns per add"
        );
        memory("none", given::add_unlocked, n, m)?;
        memory("atomic", add_atomic, n, m)?;
        memory("mutex", add_locked, n, m)?;
        file(n, (m / 100).max(1))?;
        Ok(())
    })
}

fn memory(method: &str, add: fn(&Counter) -> Result<()>, n: usize, m: u64) -> Result<()> {
    let counter = Shared::<Counter>::anonymous()?;
    let gate = Shared::<Gate>::anonymous()?;
    let workers = start_workers(n, |_| {
        gate.wait();
        for _ in 0..m {
            add(&counter)?;
        }
        Ok(())
    })?;
    let began = Instant::now();
    gate.open();
    join_workers(workers)?;
    show(
        method,
        n,
        m,
        counter.total.load(Ordering::SeqCst),
        began.elapsed(),
    );
    Ok(())
}

fn file(n: usize, m: u64) -> Result<()> {
    let path = "bench-total.txt";
    let _ = std::fs::remove_file(path);
    let mut total = FileTotal::open(path)?;
    let gate = Shared::<Gate>::anonymous()?;
    let workers = start_workers(n, |_| {
        let mut mine = total.reopen()?;
        gate.wait();
        for _ in 0..m {
            mine.add(1)?;
        }
        Ok(())
    })?;
    let began = Instant::now();
    gate.open();
    join_workers(workers)?;
    let took = began.elapsed();
    show("file", n, m, total.get()?, took);
    std::fs::remove_file(path)?;
    Ok(())
}

fn show(method: &str, n: usize, m: u64, total: u64, took: Duration) {
    let adds = n as u64 * m;
    println!(
        "{method:<8} {m:>10} {total:>10} {:>10} {:>10.1} {:>14.1}",
        adds - total.min(adds),
        took.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e9 / adds as f64
    );
}
