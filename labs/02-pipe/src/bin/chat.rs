//! A producer and a consumer chat through a pipe until the sentinel END.
//!
//! Usage: `chat`, then type messages, one per line, and END to finish.
//! The parent produces what it reads on standard input; its child
//! consumes and prints each message as soon as it arrives.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::Context;
use pipe::given::{self, me};
use pipe::{consume, join, produce, spawn_reader};

// ANCHOR: main
fn main() -> ExitCode {
    given::main_with(|| {
        let (consumer, mut to_consumer) = spawn_reader(|from_producer| {
            let pid = me();
            match consume(from_producer, |m| println!("consumer pid={pid} got: {m}")) {
                Ok(n) => {
                    println!("consumer pid={pid}: sentinel after {n} messages");
                    0
                }
                Err(e) => {
                    eprintln!("consumer: {e:#}");
                    1
                }
            }
        })?;
        println!("producer pid={} consumer={consumer}", me());

        let lines = std::io::stdin().lock().lines();
        let sent = produce(&mut to_consumer, lines.map(|l| l.context("reading stdin")))?;
        println!("producer: sent {sent} messages and the sentinel");

        // The write end stays open while we wait: the sentinel, not end of
        // file, is what tells the consumer to stop.
        let ending = join(consumer)?;
        drop(to_consumer);
        println!("producer: consumer {consumer} {ending}");
        Ok(())
    })
}
// ANCHOR_END: main
