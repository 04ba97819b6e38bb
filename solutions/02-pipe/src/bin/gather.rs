//! More than a pipe holds: the child sends the whole file IN through a
//! pipe, the parent gathers it with `collect` and writes it to OUT.
//!
//! Usage: `gather IN OUT`

use std::fs::File;
use std::process::ExitCode;

use anyhow::{Context, bail};
use pipe::collect;
use pipe::given::{self, me, parent};

fn main() -> ExitCode {
    given::main_with(|| {
        let args = given::args();
        let [input, output] = args.as_slice() else {
            bail!("usage: gather IN OUT");
        };
        let (data, ending) = collect(|mut to_parent| {
            println!("child pid={} ppid={} sending {input}", me(), parent());
            match File::open(input).and_then(|mut f| std::io::copy(&mut f, &mut to_parent)) {
                Ok(_) => 0,
                Err(e) => {
                    eprintln!("child: sending {input}: {e}");
                    1
                }
            }
        })?;
        std::fs::write(output, &data).with_context(|| format!("writing {output}"))?;
        println!(
            "parent pid={} got {} bytes; the child {ending}",
            me(),
            data.len()
        );
        Ok(())
    })
}
