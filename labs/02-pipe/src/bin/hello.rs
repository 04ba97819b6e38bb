//! A parent sends a message down a pipe; its child reads it and prints it.
//!
//! Usage: `hello`, then type the message and press Ctrl-D. The parent
//! reads its standard input only after the child exists, so the message
//! can only reach the child through the pipe.

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use pipe::given::{self, me, parent};
use pipe::{join, spawn_reader};

// ANCHOR: main
fn main() -> ExitCode {
    given::main_with(|| {
        let (child, mut to_child) = spawn_reader(|mut from_parent| {
            // The child: read until end of file, then print it all.
            let mut message = String::new();
            if let Err(e) = from_parent.read_to_string(&mut message) {
                eprintln!("child: reading the pipe: {e}");
                return 1;
            }
            let n = message.len();
            println!("child pid={} ppid={} read {n} bytes:", me(), parent());
            println!("{}", message.trim_end_matches('\n'));
            0
        })?;
        println!("parent pid={} child={child}", me());

        let mut message = Vec::new();
        std::io::stdin()
            .read_to_end(&mut message)
            .context("reading stdin")?;
        to_child
            .write_all(&message)
            .context("writing to the pipe")?;
        // Closing the write end is how the child learns the message is over.
        drop(to_child);

        let ending = join(child)?;
        println!("parent: child {child} {ending}");
        Ok(())
    })
}
// ANCHOR_END: main
