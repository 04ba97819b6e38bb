//! Given code shared by the programs in `src/bin/`. You do not need to edit it.

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

/// Blocks until standard input reaches end of file.
///
/// The checker uses this as a gate: the programs call `hold()` where it wants
/// to look at the processes in `/proc` while they are still alive, and it
/// closes their standard input when it has seen enough. Run by hand, a program
/// waits here until you press Ctrl-D.
pub fn hold() {
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin().lock();
    loop {
        match stdin.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

/// The command-line arguments after the program name, parsed as numbers.
pub fn numbers<T: std::str::FromStr>(usage: &str) -> Result<Vec<T>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        bail!("usage: {usage}");
    }
    args.iter()
        .map(|a| {
            a.parse::<T>()
                .ok()
                .with_context(|| format!("not a number: {a:?}\nusage: {usage}"))
        })
        .collect()
}

/// Runs a program's body, printing its error (with context) on failure.
pub fn main_with(body: impl FnOnce() -> Result<()>) -> ExitCode {
    let result = body();
    let _ = std::io::stdout().flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// This process's id.
pub fn me() -> i32 {
    nix::unistd::getpid().as_raw()
}

/// This process's parent's id.
pub fn parent() -> i32 {
    nix::unistd::getppid().as_raw()
}
