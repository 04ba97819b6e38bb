//! `lab`, the course's checker: `cargo lab --help`.

mod cgroup;
mod chart;
mod checkers;
mod cli;
mod commands;
mod compile;
mod diagnose;
mod fixture;
mod labs;
mod monitor;
mod peers;
mod pid;
mod process;
mod procfs;
mod programs;
mod progress;
mod report;
mod runner;
mod sandbox;
mod scenario;
mod showdown_csv;
mod stage;
mod stuck;
mod suggest;
mod targets;
mod traffic;
mod usage;

use std::process::ExitCode;

use commands::Verdict;

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = sandbox::clean_up_on_interrupt() {
        eprintln!("warning: {e:#}");
    }
    if let Err(e) = sandbox::become_subreaper() {
        eprintln!("warning: {e:#}; orphaned processes may escape the clean-up");
    }
    match commands::run(command) {
        Ok(Verdict::Passed) => ExitCode::SUCCESS,
        Ok(Verdict::Failed) => ExitCode::from(1),
        // A reader that went away (`cargo lab check 1 | head`): end quietly,
        // with the status a shell gives a process killed by SIGPIPE.
        Err(e) if is_broken_pipe(&e) => ExitCode::from(141),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
