//! N worker processes each add 1 to one shared total, M times over.
//!
//! Usage: `counter METHOD N M`, then Ctrl-D to let the workers start.
//!
//! METHOD says how each addition is made:
//! - `none`: read and write back, with no lock (the race);
//! - `mutex`: the same, with a process-shared mutex held around it;
//! - `atomic`: one atomic fetch_add;
//! - `file`: the total is text in `total.txt`, locked with flock.
//!
//! The memory methods keep the total in the shared memory segment
//! `$LAB_IPC_PREFIX` + `counter` (created if missing, and then removed at
//! the end); the file method in `total.txt` in the current directory. Both
//! keep the total they find there and add to it.

use std::process::ExitCode;

use anyhow::{Result, bail};
use locks::given::{self, Counter, Shared, hold, join_workers, start_workers};
use locks::{FileTotal, add_atomic, add_locked};

const USAGE: &str = "counter none|mutex|atomic|file N M";

fn main() -> ExitCode {
    given::main_with(|| {
        let args = given::args(USAGE, 3)?;
        let n: usize = given::number(&args[1], USAGE)?;
        let m: u64 = given::number(&args[2], USAGE)?;
        match args[0].as_str() {
            "none" => in_memory("none", given::add_unlocked, n, m),
            "mutex" => in_memory("mutex", add_locked, n, m),
            "atomic" => in_memory("atomic", add_atomic, n, m),
            "file" => in_file(n, m),
            other => bail!("unknown method {other:?}\nusage: {USAGE}"),
        }
    })
}

// ANCHOR: in_memory
fn in_memory(method: &str, add: fn(&Counter) -> Result<()>, n: usize, m: u64) -> Result<()> {
    let name = given::ipc_name("counter");
    let counter = Shared::<Counter>::named(&name)?;
    let start = counter.total.load(std::sync::atomic::Ordering::SeqCst);
    println!("{method}: {n} workers add 1, {m} times each, to {start} in {name}");
    let workers = start_workers(n, |_| {
        hold();
        for _ in 0..m {
            add(&counter)?;
        }
        Ok(())
    })?;
    join_workers(workers)?;
    let total = counter.total.load(std::sync::atomic::Ordering::SeqCst);
    report(start, n, m, total);
    Ok(())
}
// ANCHOR_END: in_memory

// ANCHOR: in_file
fn in_file(n: usize, m: u64) -> Result<()> {
    let mut total = FileTotal::open("total.txt")?;
    let start = total.get()?;
    println!("file: {n} workers add 1, {m} times each, to {start} in total.txt");
    let workers = start_workers(n, |_| {
        let mut mine = total.reopen()?;
        hold();
        for _ in 0..m {
            mine.add(1)?;
        }
        Ok(())
    })?;
    join_workers(workers)?;
    let end = total.get()?;
    report(start, n, m, end);
    Ok(())
}
// ANCHOR_END: in_file

fn report(start: u64, n: usize, m: u64, total: u64) {
    let expected = start + n as u64 * m;
    println!(
        "total={total} expected={expected} lost={}",
        expected.saturating_sub(total)
    );
}
