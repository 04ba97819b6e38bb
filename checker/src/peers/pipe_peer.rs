//! The checker as a third party on a pipe between two processes of the
//! program: it opens the same pipe through `/proc/PID/fd/N` and writes
//! into it (or reads it) as one more peer, so that the reader at the other
//! end meets traffic shapes its own writer never makes (halves with a
//! pause between them, bursts, pieces cut anywhere). Also: how many bytes
//! wait in a pipe, and how many write() calls a process has made.

use crate::pid::Pid;
use std::fs::File;
use std::os::fd::AsRawFd;

/// Opens the pipe that descriptor `fd` of `pid` refers to, for writing
/// (`write`) or reading: a new open file description of the same pipe,
/// close-on-exec, that the checker holds on its own.
pub fn join(pid: Pid, fd: i32, write: bool) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .open(format!("/proc/{pid}/fd/{fd}"))
}

/// Bytes written to a pipe and not read yet (FIONREAD works on either
/// end); `None` if the kernel does not say.
pub fn unread(pipe: &impl AsRawFd) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer.
    let r = unsafe { libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut n) };
    (r == 0).then_some(n as usize)
}

/// The write() calls (and their kin: writev, pwrite...) `pid` has made so
/// far, from `syscw` in `/proc/PID/io`.
pub fn write_calls(pid: Pid) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("syscw:"))
        .and_then(|v| v.trim().parse().ok())
}
