//! Producers and consumers around one bounded buffer.
//!
//! Usage: `buffer CAPACITY PRODUCERS CONSUMERS`
//!
//! Producer P puts the lines of the file `items-P.txt` (in the current
//! directory), one message each. Each consumer first waits at a gate
//! (until standard input closes: press Ctrl-D), then takes messages until
//! it takes the end marker, and writes what it took to `taken-C.txt`. Once
//! every producer is done, the parent puts one end marker per consumer.

use std::process::ExitCode;

use anyhow::{Context, Result, ensure};
use semaphores::{BoundedBuffer, given};

/// Put after the last message, once per consumer: "no more messages".
const END: &str = "";

fn produce(buffer: &BoundedBuffer, producer: usize) -> Result<()> {
    let file = format!("items-{producer}.txt");
    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {file}"))?;
    for line in text.lines().filter(|l| *l != END) {
        buffer.put(line)?;
    }
    Ok(())
}

fn consume(buffer: &BoundedBuffer, consumer: usize) -> Result<()> {
    given::hold();
    let mut taken = Vec::new();
    loop {
        let message = buffer.take()?;
        if message == END {
            break;
        }
        taken.push(message);
    }
    let mut text = taken.join("\n");
    text.push('\n');
    let file = format!("taken-{consumer}.txt");
    std::fs::write(&file, text).with_context(|| format!("writing {file}"))
}

// ANCHOR: main
fn main() -> ExitCode {
    given::main_with(|| {
        let usage = "buffer CAPACITY PRODUCERS CONSUMERS";
        let args = given::numbers::<usize>(usage)?;
        ensure!(args.len() == 3, "usage: {usage}");
        let (capacity, producers, consumers) = (args[0], args[1], args[2]);
        let buffer = BoundedBuffer::new(capacity)?;

        let mut eaters = Vec::new();
        for c in 0..consumers {
            let buffer = &buffer;
            eaters.push(given::start_fallible(move || consume(buffer, c))?);
        }
        let mut makers = Vec::new();
        for p in 0..producers {
            let buffer = &buffer;
            makers.push(given::start_fallible(move || produce(buffer, p))?);
        }
        // Even if a producer failed, end the consumers before reporting it.
        let made = given::join_all(&makers);
        for _ in 0..consumers {
            buffer.put(END)?;
        }
        let eaten = given::join_all(&eaters);
        made.context("a producer failed")?;
        eaten.context("a consumer failed")?;
        println!("{producers} producers and {consumers} consumers done");
        Ok(())
    })
}
// ANCHOR_END: main
