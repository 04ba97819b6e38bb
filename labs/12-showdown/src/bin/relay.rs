//! Carries messages through one mechanism and writes down what arrived,
//! so that the checker can compare it with what it sent.
//!
//! Usage: `relay MECHANISM MESSAGES [--hold]`
//!
//! MESSAGES is a file of frames (a 4-byte little-endian length, then the
//! bytes). Two rounds, each with a fresh connection and a forked child:
//!
//! 1. echo: the parent sends each message and waits for the child to send
//!    it back; the child appends what it received to `received.bin`, the
//!    parent what came back to `echoed.bin`;
//! 2. stream: the parent sends every message without waiting; the child
//!    appends what it receives to `streamed.bin`, then says "ok".
//!
//! With `--hold`, the parent stops once connected in round 1, prints
//! `connected parent=P child=C`, and waits for end of file on stdin, so
//! that the checker can look at what it holds.

use std::fs::File;
use std::process::ExitCode;

use anyhow::{Context, Result, bail, ensure};
use showdown::{Mechanism, given};

fn main() -> ExitCode {
    given::main_with(|| {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let (mech, path, hold) = match args.as_slice() {
            [m, p] => (m, p, false),
            [m, p, h] if h == "--hold" => (m, p, true),
            _ => bail!("usage: relay MECHANISM MESSAGES [--hold]"),
        };
        let mech = Mechanism::parse(mech)?;
        let messages = given::read_frames(path)?;
        let count = messages.len();
        echo_round(mech, &messages, hold)?;
        stream_round(mech, &messages)?;
        println!(
            "relay {}: {count} messages echoed and streamed",
            mech.name()
        );
        Ok(())
    })
}

fn echo_round(mech: Mechanism, messages: &[Vec<u8>], hold: bool) -> Result<()> {
    let mut echoed = File::create("echoed.bin").context("creating echoed.bin")?;
    let count = messages.len();
    let (child, mut t) = given::connect(mech, |t| {
        let mut received = File::create("received.bin").context("creating received.bin")?;
        let mut buf = Vec::new();
        for i in 0..count {
            t.recv(&mut buf)
                .with_context(|| format!("receiving message {i}"))?;
            given::write_frame_to(&mut received, &buf)?;
            t.send(&buf)
                .with_context(|| format!("sending back message {i}"))?;
        }
        Ok(())
    })?;
    if hold {
        println!("connected parent={} child={child}", given::me());
        given::hold();
    }
    let mut reply = Vec::new();
    for (i, msg) in messages.iter().enumerate() {
        t.send(msg)
            .with_context(|| format!("sending message {i} ({} bytes)", msg.len()))?;
        t.recv(&mut reply)
            .with_context(|| format!("receiving the echo of message {i}"))?;
        given::write_frame_to(&mut echoed, &reply)?;
    }
    drop(t);
    given::join(child)
}

fn stream_round(mech: Mechanism, messages: &[Vec<u8>]) -> Result<()> {
    let count = messages.len();
    let (child, mut t) = given::connect(mech, |t| {
        let mut out = File::create("streamed.bin").context("creating streamed.bin")?;
        let mut buf = Vec::new();
        for i in 0..count {
            t.recv(&mut buf)
                .with_context(|| format!("receiving message {i}"))?;
            given::write_frame_to(&mut out, &buf)?;
        }
        t.send(b"ok")
    })?;
    for (i, msg) in messages.iter().enumerate() {
        t.send(msg)
            .with_context(|| format!("sending message {i} ({} bytes)", msg.len()))?;
    }
    let mut ack = Vec::new();
    t.recv(&mut ack).context("waiting for the child's ok")?;
    ensure!(ack == b"ok", "the child answered {ack:?}, not ok");
    drop(t);
    given::join(child)
}
