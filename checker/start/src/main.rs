//! `cargo lab` runs this first (see `.cargo/config.toml`). It builds and
//! runs the checker with `cargo run --quiet`, and on a terminal asks cargo
//! for its progress bar as well.
//!
//! Why a program of its own: `--quiet` hides cargo's "Finished ..." and
//! "Running ..." lines on every run, but it also hides the progress bar,
//! so the first `cargo lab` sat silent while the checker compiled. Cargo
//! draws the bar despite `--quiet` when `term.progress.when` is `always`,
//! but then it draws it into pipes too, and it needs a width. An alias
//! cannot ask whether stderr is a terminal; this program can, and has no
//! dependencies, so it compiles in about a second.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut run = Command::new(cargo);
    run.args([
        "run",
        "--quiet",
        "--package",
        "checker",
        "--bin",
        "lab",
        "--",
    ])
    .args(std::env::args_os().skip(1));
    match stderr_width() {
        // A bar only while something compiles: a build with nothing to do
        // prints nothing.
        Some(width) => run
            .env("CARGO_TERM_PROGRESS_WHEN", "always")
            .env("CARGO_TERM_PROGRESS_WIDTH", width.to_string()),
        None => run
            .env_remove("CARGO_TERM_PROGRESS_WHEN")
            .env_remove("CARGO_TERM_PROGRESS_WIDTH"),
    };
    // Become cargo, so that its exit status (the checker's) is ours.
    let err = run.exec();
    eprintln!("error: cannot run cargo to start the checker: {err}");
    ExitCode::from(2)
}

/// The width of the terminal on stderr, or None when stderr is not a
/// terminal (a pipe, a file, CI) or `TERM=dumb`.
fn stderr_width() -> Option<u16> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() || std::env::var_os("TERM").is_some_and(|t| t == "dumb") {
        return None;
    }
    #[repr(C)]
    struct Winsize {
        rows: u16,
        cols: u16,
        x: u16,
        y: u16,
    }
    unsafe extern "C" {
        fn ioctl(fd: i32, request: std::ffi::c_ulong, ...) -> i32;
    }
    // TIOCGWINSZ: the course runs on Linux; elsewhere, no bar.
    #[cfg(target_os = "linux")]
    const TIOCGWINSZ: std::ffi::c_ulong = 0x5413;
    #[cfg(not(target_os = "linux"))]
    return None;
    let mut size = Winsize {
        rows: 0,
        cols: 0,
        x: 0,
        y: 0,
    };
    // SAFETY: TIOCGWINSZ writes one struct winsize, which `size` is.
    let ok = unsafe { ioctl(2, TIOCGWINSZ, &mut size as *mut Winsize) } == 0;
    // Cargo's bar plus its text; a terminal too narrow for that gets none.
    (ok && size.cols >= 40).then_some(size.cols - 1)
}
