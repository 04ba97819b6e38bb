//! A parent and its child talk over a socket pair: the parent sends each
//! line of its standard input, the child answers with the text reversed.
//! One socket pair carries both directions, where pipes needed two.
//!
//! Usage: `pair`, then type lines; Ctrl-D ends.

use std::io::{BufRead, BufReader};
use std::process::ExitCode;

use anyhow::Context;
use unix_sockets::given::{self, me};
use unix_sockets::{answer, join, receive, send, spawn_worker};

fn main() -> ExitCode {
    given::main_with(|| {
        let (child, to_child) = spawn_worker(|stream| match answer(&stream) {
            Ok(_) => 0,
            Err(e) => {
                eprintln!("child: {e:#}");
                1
            }
        })?;
        println!("parent pid={} child={child}", me());
        let mut replies = BufReader::new(&to_child);
        for line in std::io::stdin().lock().lines() {
            let request = line.context("reading stdin")?;
            send(&to_child, &request)?;
            let reply = receive(&mut replies)?.context("the child hung up")?;
            println!("reply: {reply}");
        }
        // Our end closes: the child reads end of file and returns.
        drop(replies);
        drop(to_child);
        let ending = join(child)?;
        println!("parent: child {child} {ending}");
        Ok(())
    })
}
