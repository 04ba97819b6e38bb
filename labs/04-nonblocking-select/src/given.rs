//! Given code shared by the programs in `src/bin/` and by the library. You do
//! not need to edit it.

// What the programs of every lab share is written once, in the course's
// crate `lab-program` (crates/lab-program); this file keeps what is
// specific to this lab.
pub use lab_program::main_with;

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::fcntl::{FcntlArg, fcntl};
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::time::TimeVal;

/// Cuts a stream of bytes into lines. A read returns whatever bytes the
/// pipe holds: half a line, or three lines and a bit. Keep one `Lines` per
/// source, push every chunk you read, and print the complete lines it
/// hands back.
#[derive(Debug, Default)]
pub struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    /// Adds `bytes` and returns every line they complete, without the `\n`.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut done = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                let line = std::mem::take(&mut self.partial);
                done.push(String::from_utf8_lossy(&line).into_owned());
            } else {
                self.partial.push(b);
            }
        }
        done
    }

    /// At end of file: the last line, if it had no `\n`.
    pub fn finish(&mut self) -> Option<String> {
        if self.partial.is_empty() {
            None
        } else {
            let line = std::mem::take(&mut self.partial);
            Some(String::from_utf8_lossy(&line).into_owned())
        }
    }
}

/// The CPU time this process has used so far (user + system).
pub fn cpu_time() -> Result<Duration> {
    let usage = getrusage(UsageWho::RUSAGE_SELF).context("getrusage")?;
    let duration = |tv: TimeVal| {
        Duration::from_secs(tv.tv_sec() as u64) + Duration::from_micros(tv.tv_usec() as u64)
    };
    Ok(duration(usage.user_time()) + duration(usage.system_time()))
}

/// What is left of a wait that must end at `deadline` (`None`: no end).
pub fn time_left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// A duration in whole milliseconds, rounded up so that a wait never ends
/// early, as the `int` that poll(2) and epoll_wait(2) take.
pub fn millis_rounded_up(d: Duration) -> i32 {
    let ms = d.as_micros().div_ceil(1000);
    i32::try_from(ms).unwrap_or(i32::MAX)
}

/// Takes ownership of descriptor `fd`, inherited from whoever started this
/// program (`mux poll 3 4 3<a 4<b` in a shell, or the checker).
pub fn inherited_fd(fd: RawFd) -> Result<OwnedFd> {
    if fd <= 2 {
        bail!("fd {fd} is stdin, stdout or stderr: give descriptors from 3 up");
    }
    // SAFETY: F_GETFD only asks whether the number is an open descriptor.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    fcntl(borrowed, FcntlArg::F_GETFD)
        .with_context(|| format!("fd {fd} is not open: did you redirect it, as in `{fd}<file`?"))?;
    // SAFETY: the descriptor is open and was handed to this program to
    // own; the caller makes sure that no number is taken twice.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The bytes of one read, for printing: `"Hel"`, with escapes.
pub fn shown(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_lines_across_chunks() {
        let mut lines = Lines::default();
        assert!(lines.push(b"hel").is_empty());
        assert_eq!(lines.push(b"lo\nwor"), vec!["hello"]);
        assert_eq!(lines.push(b"ld\n\nx"), vec!["world", ""]);
        assert_eq!(lines.finish().as_deref(), Some("x"));
        assert_eq!(lines.finish(), None);
    }

    #[test]
    fn rounds_millis_up() {
        assert_eq!(millis_rounded_up(Duration::from_micros(1)), 1);
        assert_eq!(millis_rounded_up(Duration::from_millis(250)), 250);
        assert_eq!(millis_rounded_up(Duration::ZERO), 0);
    }
}
