//! The named segment as the checker sees it: its layout, mapped by the
//! checker itself, and what every scenario checks about shared mappings.

use crate::pid::Pid;
use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use nix::fcntl::OFlag;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap, shm_open};
use nix::sys::signal::Signal;
use nix::sys::stat::{Mode, fstat};
use nix::unistd::ftruncate;
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::process::{Exit, Proc};
use crate::procfs;
use crate::scenario::{Failure, Outcome, Run, quote_lines};

// The segment layout, as the chapter and the lab's `Header` document it.
pub const MAGIC: u64 = u64::from_le_bytes(*b"LAB05SHM");
pub const HEADER_LEN: usize = 24;
pub const READY: u64 = 1;

/// A named segment the checker maps itself; unmapped on drop (the sandbox
/// removes the name).
pub struct Segment {
    pub ptr: NonNull<c_void>,
    pub len: usize,
}

impl Segment {
    /// Creates `name` with `size` zero bytes, mapped for reading and writing.
    pub fn create(name: &str, size: usize) -> Result<Segment, Failure> {
        let fd = shm_open(
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
            Mode::S_IRUSR | Mode::S_IWUSR,
        )
        .map_err(|e| Failure::internal(format!("shm_open({name}): {e}")))?;
        ftruncate(&fd, size as i64)
            .map_err(|e| Failure::internal(format!("ftruncate({name}): {e}")))?;
        Segment::map(&fd, size, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE)
            .map_err(|e| Failure::internal(format!("mmap({name}): {e}")))
    }

    /// Opens the existing segment `name` read-only: `None` if there is none.
    pub fn open(name: &str) -> Result<Option<Segment>, Failure> {
        let fd = match shm_open(name, OFlag::O_RDONLY, Mode::empty()) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(Failure::internal(format!("shm_open({name}): {e}"))),
        };
        let size = fstat(&fd)
            .map_err(|e| Failure::internal(format!("fstat({name}): {e}")))?
            .st_size as usize;
        if size == 0 {
            return Ok(Some(Segment {
                ptr: NonNull::dangling(),
                len: 0,
            }));
        }
        Segment::map(&fd, size, ProtFlags::PROT_READ)
            .map(Some)
            .map_err(|e| Failure::internal(format!("mmap({name}): {e}")))
    }

    fn map(fd: &OwnedFd, size: usize, prot: ProtFlags) -> nix::Result<Segment> {
        let len = NonZeroUsize::new(size).ok_or(nix::errno::Errno::EINVAL)?;
        // SAFETY: a new mapping at an address the kernel picks.
        let ptr = unsafe { mmap(None, len, prot, MapFlags::MAP_SHARED, fd, 0) }?;
        Ok(Segment { ptr, len: size })
    }

    /// Header word `i` (0 magic, 1 ready, 2 len).
    pub fn word(&self, i: usize) -> &AtomicU64 {
        assert!(self.len >= HEADER_LEN && i < 3);
        // SAFETY: page-aligned, inside the mapping, any bits are a u64.
        unsafe { &*self.ptr.as_ptr().cast::<AtomicU64>().add(i) }
    }

    /// The bytes after the header.
    pub fn data(&self) -> Vec<u8> {
        let n = self.len.saturating_sub(HEADER_LEN);
        let mut out = vec![0u8; n];
        if n > 0 {
            // SAFETY: `n` bytes follow the header inside the mapping.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    self.ptr.as_ptr().cast::<u8>().add(HEADER_LEN),
                    out.as_mut_ptr(),
                    n,
                )
            };
        }
        out
    }

    pub fn write_data(&self, data: &[u8]) {
        assert!(HEADER_LEN + data.len() <= self.len);
        // SAFETY: checked to fit inside the mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.ptr.as_ptr().cast::<u8>().add(HEADER_LEN),
                data.len(),
            )
        };
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: ours, and nothing borrows it any more.
            let _ = unsafe { munmap(self.ptr, self.len) };
        }
    }
}

/// The segment's name for this scenario, as `given::ipc_name("message")`
/// makes it, and where it shows up in /dev/shm.
pub fn segment_name(run: &Run) -> (String, PathBuf) {
    let name = format!("{}message", run.sandbox.ipc_prefix);
    let path = PathBuf::from(format!("/dev/shm/{}", name.trim_start_matches('/')));
    (name, path)
}

pub fn random_text(run: &mut Run) -> String {
    let len = run.rng.random_range(300..3000);
    (&mut run.rng)
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// The address in `parent pid=P slots at 0xADDR`.
pub fn address_in(line: &str) -> Option<u64> {
    let word = line.split_whitespace().last()?;
    u64::from_str_radix(word.strip_prefix("0x")?, 16).ok()
}

/// The mapping of `pid` that holds `len` bytes at `addr` must be shared.
pub fn expect_shared(pid: Pid, addr: u64, len: u64, what: &str) -> Outcome {
    let maps = procfs::mappings(pid);
    let Some(m) = maps.iter().find(|m| m.contains(addr, len)) else {
        return Err(Failure::wrong(
            format!("{len} bytes of {what} mapped at {addr:#x} in process {pid}"),
            format!("/proc/{pid}/maps has no mapping there"),
        ));
    };
    if !m.is_shared() {
        return Err(Failure::wrong(
            format!("{what} at {addr:#x} to be a shared mapping (`rw-s` in /proc/{pid}/maps)"),
            format!("it is private: `{}`", m.perms),
        )
        .because(
            "the memory was mapped with MAP_PRIVATE: after fork each worker writes to a copy-on-write \
             copy of its own and the parent never sees it. Map it with MAP_SHARED",
        ));
    }
    Ok(())
}

/// The 8-byte words at `addr` in the memory of `pid`; `None` where the
/// system does not let the checker read it (then it trusts the output).
pub fn peek_words(pid: Pid, addr: u64, n: usize) -> Option<Vec<u64>> {
    let bytes = procfs::read_memory(pid, addr, n * 8).ok()?;
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
            .collect(),
    )
}

pub fn texts(lines: Vec<crate::process::Line>) -> Vec<String> {
    lines.into_iter().map(|l| l.text).collect()
}

pub fn average(grades: &[u32]) -> f64 {
    let sum: u64 = grades.iter().map(|&g| u64::from(g)).sum();
    sum as f64 / grades.len() as f64
}

/// Waits for `p` to exit and explains a bad ending.
pub fn expect_clean_exit(run: &Run, p: &mut Proc, lines: &[String]) -> Outcome {
    match run.wait(p)? {
        Exit::Code(0) => Ok(()),
        Exit::Signal(Signal::SIGBUS) => Err(Failure::wrong(
            format!("{} to exit with status 0", p.name),
            "it was killed by SIGBUS",
        )
        .because(
            "it touched a page of the mapping beyond the end of the segment. A new segment has 0 bytes: \
             ftruncate it to its size before writing through the mapping",
        )),
        other => Err(Failure::wrong(
            format!("{} to exit with status 0", p.name),
            format!("it ended with {other} after printing {}", quote_lines(lines)),
        )),
    }
}
