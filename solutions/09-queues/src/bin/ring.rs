//! A queue of our own: P producers and C consumers share a ring buffer.
//! Producer `i` sends each line of the file `in-i`; consumer `j` writes
//! each message it takes to `out-j`, one per line. The consumers start
//! only once standard input ends (the gate): until then the ring fills
//! up and the producers must wait.
//!
//! Usage: `ring PRODUCERS CONSUMERS CAPACITY`

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use nix::unistd::Pid;
use queues::given::{self, Ending};
use queues::{Ring, join};

fn produce(ring: &Ring, input: &str) -> Result<usize> {
    let file = File::open(input).with_context(|| format!("opening {input}"))?;
    let mut sent = 0;
    for line in BufReader::new(file).lines() {
        let line = line.with_context(|| format!("reading {input}"))?;
        if line.is_empty() {
            continue;
        }
        ring.push(line.as_bytes())?;
        sent += 1;
    }
    Ok(sent)
}

fn consume(ring: &Ring, output: &str) -> Result<usize> {
    let file = File::create(output).with_context(|| format!("creating {output}"))?;
    let mut out = BufWriter::new(file);
    let mut taken = 0;
    loop {
        // About to wait for a message? Write out what we have first, so
        // that what was taken is on disk even if we wait forever.
        if ring.is_empty()? {
            out.flush().with_context(|| format!("writing {output}"))?;
        }
        let message = ring.pop()?;
        // The empty message is the stop sign: one for each consumer.
        if message.is_empty() {
            break;
        }
        out.write_all(&message)?;
        out.write_all(b"\n")?;
        taken += 1;
    }
    out.flush().with_context(|| format!("writing {output}"))?;
    Ok(taken)
}

fn child(what: &str, work: impl FnOnce() -> Result<usize>) -> i32 {
    match work() {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("{what}: {e:#}");
            1
        }
    }
}

fn join_all(pids: &[Pid], what: &str) -> Result<()> {
    let mut failed = 0;
    for &pid in pids {
        if join(pid)? != Ending::Exited(0) {
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} {what} failed");
    }
    Ok(())
}

// ANCHOR: main
fn main() -> ExitCode {
    given::main_with(|| {
        let numbers: Vec<usize> = given::args()
            .iter()
            .map(|a| a.parse())
            .collect::<Result<_, _>>()
            .context("usage: ring PRODUCERS CONSUMERS CAPACITY")?;
        let [producers, consumers, capacity] = numbers[..] else {
            bail!("usage: ring PRODUCERS CONSUMERS CAPACITY");
        };
        // Created before forking: every child shares this one mapping.
        let ring = Ring::create(capacity)?;
        let mut producing = Vec::new();
        for i in 0..producers {
            let input = format!("in-{i}");
            let pid = given::spawn(|| child("producer", || produce(&ring, &input)))?;
            println!("producer {i} pid={pid}");
            producing.push(pid);
        }
        println!("gate: consumers start when stdin ends");
        given::hold();
        let mut consuming = Vec::new();
        for j in 0..consumers {
            let output = format!("out-{j}");
            let pid = given::spawn(|| child("consumer", || consume(&ring, &output)))?;
            println!("consumer {j} pid={pid}");
            consuming.push(pid);
        }
        let produced = join_all(&producing, "producers");
        // Every message is in; one stop sign per consumer, after them.
        // (Even if a producer failed: the consumers must not wait forever.)
        for _ in 0..consumers {
            ring.push(b"")?;
        }
        join_all(&consuming, "consumers")?;
        produced?;
        println!("done");
        Ok(())
    })
}
// ANCHOR_END: main
