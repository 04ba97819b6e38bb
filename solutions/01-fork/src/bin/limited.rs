//! fork fails half way: only the first K forks succeed, the next one fails
//! with EAGAIN, as when the process limit is reached. `run_parallel` must
//! then join the workers it did start before it returns the error.
//!
//! Usage: `limited N K` (0 < K < N), then Ctrl-D to let the workers end.

use std::cell::Cell;
use std::process::ExitCode;
use std::rc::Rc;

use anyhow::ensure;
use fork::given::{self, hold, me};
use fork::{Job, run_parallel};
use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, waitpid};

/// Carried by every job. A job is dropped in the parent once `start` has
/// forked its child (the child has its own copy): the K-th drop in the
/// parent turns fork off for the forks still to come.
struct Countdown {
    parent: i32,
    left: Rc<Cell<usize>>,
}

impl Drop for Countdown {
    fn drop(&mut self) {
        if me() != self.parent || self.left.get() == 0 {
            return;
        }
        self.left.set(self.left.get() - 1);
        if self.left.get() == 0 {
            if let Err(e) = given::refuse_forks() {
                eprintln!("limited: cannot make fork fail on this system: {e:#}");
                std::process::exit(3);
            }
        }
    }
}

fn main() -> ExitCode {
    given::main_with(|| {
        let args = given::numbers::<usize>("limited N K")?;
        ensure!(
            args.len() == 2 && 0 < args[1] && args[1] < args[0],
            "usage: limited N K (0 < K < N)"
        );
        let (n, k) = (args[0], args[1]);
        let left = Rc::new(Cell::new(k));
        let jobs = (0..n)
            .map(|i| -> Job {
                let countdown = Countdown {
                    parent: me(),
                    left: left.clone(),
                };
                Box::new(move || {
                    let _keep = &countdown;
                    println!("worker {i} pid={} started", me());
                    hold();
                    0
                })
            })
            .collect();
        match run_parallel(jobs) {
            Ok(results) => println!("run_parallel started all {} workers", results.len()),
            Err(e) => println!("run_parallel failed: {e:#}"),
        }
        // Whatever happened, no child may be left: not running, not a zombie.
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Err(Errno::ECHILD) => println!("no child left"),
            Ok(status) => println!("a child was left behind: {status:?}"),
            Err(e) => println!("waitpid(-1): {e}"),
        }
        Ok(())
    })
}
