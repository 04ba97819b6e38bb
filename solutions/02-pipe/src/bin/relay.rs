//! Bytes of any value through a pipe: the parent copies its standard input
//! into the pipe, the child copies the pipe into the file OUT.
//!
//! Usage: `relay OUT < some-file`

use std::fs::File;
use std::process::ExitCode;

use anyhow::Context;
use pipe::given::{self, me};
use pipe::{join, spawn_reader};

fn main() -> ExitCode {
    given::main_with(|| {
        let out = given::args()
            .into_iter()
            .next()
            .context("usage: relay OUT")?;
        let (child, mut to_child) = spawn_reader(|mut from_parent| {
            let copied =
                File::create(&out).and_then(|mut file| std::io::copy(&mut from_parent, &mut file));
            match copied {
                Ok(n) => {
                    println!("child pid={} wrote {n} bytes to {out}", me());
                    0
                }
                Err(e) => {
                    eprintln!("child: copying the pipe to {out}: {e}");
                    1
                }
            }
        })?;
        println!("parent pid={} child={child}", me());
        let sent = std::io::copy(&mut std::io::stdin().lock(), &mut to_child)
            .context("copying stdin into the pipe")?;
        drop(to_child);
        let ending = join(child)?;
        println!("parent: sent {sent} bytes, child {child} {ending}");
        Ok(())
    })
}
