//! Every way a worker can end: its own exit status, a panic, a signal
//! (the checker kills one), each at its own time. The parent reports how
//! each one ended.
//!
//! Usage: `endings SPEC...`, each SPEC `CODE:MS` (exit with CODE) or
//! `panic:MS`: the worker waits at the gate (stdin), then MS ms, then ends.
//!
//! The parent has two things of its own that its children must not run:
//! an exit handler (`atexit`), which prints `atexit pid=P` when the process
//! ends through `exit`, and a SIGUSR1 handler installed without
//! SA_RESTART, so that a SIGUSR1 makes a waiting `waitpid` fail with EINTR.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use fork::given::{self, hold, me};
use fork::{Job, run_parallel};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

/// Runs when the process ends through `exit` (returning from `main` does).
extern "C" fn at_exit() {
    let line = format!("atexit pid={}\n", me());
    // SAFETY: write(2) on stdout with a buffer that outlives the call.
    unsafe { libc::write(1, line.as_ptr().cast(), line.len()) };
}

extern "C" fn on_usr1(_: libc::c_int) {
    let line = b"parent got SIGUSR1\n";
    // SAFETY: write(2) is async-signal-safe; the buffer is static.
    unsafe { libc::write(1, line.as_ptr().cast(), line.len()) };
}

fn main() -> ExitCode {
    given::main_with(|| {
        let mut jobs: Vec<Job> = Vec::new();
        for (i, spec) in std::env::args().skip(1).enumerate() {
            let (how, ms) = spec
                .split_once(':')
                .with_context(|| format!("not CODE:MS or panic:MS: {spec:?}"))?;
            let ms: u64 = ms.parse().with_context(|| format!("bad MS in {spec:?}"))?;
            let code: Option<i32> = match how {
                "panic" => None,
                n => Some(n.parse().with_context(|| format!("bad CODE in {spec:?}"))?),
            };
            jobs.push(Box::new(move || {
                println!("worker {i} pid={}", me());
                hold();
                std::thread::sleep(Duration::from_millis(ms));
                match code {
                    Some(code) => code,
                    None => {
                        // A panic message of our own, one line on stderr.
                        std::panic::set_hook(Box::new(|info| {
                            let payload = info.payload();
                            let what = payload
                                .downcast_ref::<String>()
                                .map(String::as_str)
                                .or_else(|| payload.downcast_ref::<&str>().copied())
                                .unwrap_or("?");
                            eprintln!("pid={}: a panic: {what}", me());
                        }));
                        panic!("worker {i} gives up")
                    }
                }
            }));
        }
        if jobs.is_empty() {
            bail!("usage: endings SPEC... (CODE:MS or panic:MS)");
        }
        // SAFETY: at_exit is an extern "C" fn that lives as long as the program.
        if unsafe { libc::atexit(at_exit) } != 0 {
            bail!("atexit failed");
        }
        let action = SigAction::new(
            SigHandler::Handler(on_usr1),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: on_usr1 only calls write(2).
        unsafe { sigaction(Signal::SIGUSR1, &action) }.context("sigaction(SIGUSR1)")?;

        for (pid, ending) in run_parallel(jobs)? {
            println!("worker pid={pid} {ending}");
        }
        println!("parent pid={} done", me());
        Ok(())
    })
}
