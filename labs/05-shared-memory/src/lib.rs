//! Lab 05 — shared memory: mmap before fork, and named segments.
//!
//! You write the pieces that make memory shared between processes:
//!
//! - [`Mapping::anonymous_shared`] maps memory that parent and children
//!   share after fork;
//! - [`course_averages`] has one worker per course write its average into
//!   its own slot of that memory;
//! - [`create_segment`], [`open_segment`] and [`remove_segment`] make, open
//!   and remove a *named* segment that unrelated programs can share;
//! - [`write_message`] and [`read_message`] put a message in a segment and
//!   take it out, following the layout described at [`Header`];
//! - [`publish`] and [`receive`] are what the `writer` and `reader` programs
//!   call.
//!
//! The programs in `src/bin/` are given: each one calls your functions, and
//! the checker runs them (`cargo lab check 5`). Edit this file only.
//! Read chapter 5 of the book first; `cargo lab hint 5` helps when stuck.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::{Result, ensure};
use nix::sys::mman::munmap;

pub mod given;

/// Memory mapped into this process: a start address and a length. It is
/// unmapped when dropped.
pub struct Mapping {
    ptr: NonNull<c_void>,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes of zeroed memory that this process and every child
    /// it forks afterwards share: a write by one is seen by all.
    pub fn anonymous_shared(len: usize) -> Result<Mapping> {
        // TODO: map `len` bytes with `nix::sys::mman::mmap_anonymous`:
        // no address (`None`), the length as a `NonZeroUsize`, PROT_READ |
        // PROT_WRITE, and MAP_SHARED, so that children forked afterwards
        // share the memory instead of getting a copy. mmap_anonymous is
        // `unsafe`: say in a SAFETY comment why this call is fine. Return
        // `Mapping { ptr, len }`, with context on errors.
        let _ = len;
        todo!("anonymous_shared: mmap_anonymous with MAP_SHARED")
    }

    /// How many bytes are mapped.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: a mapping has at least one byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the mapping starts in this process's address space.
    pub fn address(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// The mapping seen as 8-byte words. They are atomics because other
    /// processes change them behind this one's back: an atomic tells Rust
    /// that the value may change at any time, so every `load` really reads
    /// memory. With `Ordering::Relaxed` they cost what plain reads and
    /// writes cost.
    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: mmap returns page-aligned memory, AtomicU64 has the size
        // and alignment of u64, and any bit pattern is a valid u64. The
        // slice lives no longer than `self`, which keeps the memory mapped.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<AtomicU64>(), self.len / 8) }
    }

    /// The segment's header, at the start of the mapping.
    pub fn header(&self) -> Result<&Header> {
        ensure!(
            self.len >= HEADER_LEN,
            "a segment of {} bytes is too small for the {HEADER_LEN}-byte header",
            self.len
        );
        // SAFETY: the header is three AtomicU64 (see above), and the
        // mapping is at least that long.
        Ok(unsafe { &*self.ptr.as_ptr().cast::<Header>() })
    }

    /// How many data bytes fit after the header.
    pub fn capacity(&self) -> usize {
        self.len.saturating_sub(HEADER_LEN)
    }

    /// Where the data starts, just after the header. Reading or writing
    /// through it is `unsafe`: stay within `capacity()` bytes.
    pub fn data_ptr(&self) -> *mut u8 {
        // SAFETY: at most one past the end of the mapping when it is
        // exactly as long as the header.
        unsafe { self.ptr.as_ptr().cast::<u8>().add(HEADER_LEN.min(self.len)) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours, and every reference into it borrows
        // `self`, so none is left.
        let _ = unsafe { munmap(self.ptr, self.len) };
    }
}
/// Computes the average of every course, each in a worker process of its
/// own, and returns them in the order of `courses`. Worker `i` writes only
/// slot `i` of `slots` (a shared mapping of at least one word per course);
/// the parent reads every slot once all the workers have ended.
pub fn course_averages(courses: &[Vec<u32>], slots: &Mapping) -> Result<Vec<f64>> {
    // TODO:
    // 1. `let words = slots.words();` and check there is a slot per course.
    // 2. For each course i, start a worker (`given::start`) that stores
    //    `given::average(grades).to_bits()` in `words[i]` (Ordering::Relaxed)
    //    and prints `worker {i} pid={given::me()} wrote slot {i}`, then
    //    returns 0. Each worker writes its own slot and no other.
    // 3. Join every worker (`given::join`) once they are all started.
    // 4. Read the slots back (`f64::from_bits`) and return them in order.
    let _ = (courses, slots);
    todo!("course_averages: one worker per course, each writing its own slot")
}
// ANCHOR: layout
/// The first bytes of every segment of this lab:
///
/// ```text
/// offset  0  magic  u64  MAGIC: "this is a lab 05 segment"
/// offset  8  ready  u64  0 while the writer fills it in, 1 once complete
/// offset 16  len    u64  how many data bytes follow
/// offset 24  data   len bytes
/// ```
///
/// All numbers are in the machine's byte order.
#[repr(C)]
pub struct Header {
    pub magic: AtomicU64,
    pub ready: AtomicU64,
    pub len: AtomicU64,
}

/// "LAB05SHM" read as a little-endian number.
pub const MAGIC: u64 = u64::from_le_bytes(*b"LAB05SHM");
/// The header's size: the data starts here.
pub const HEADER_LEN: usize = std::mem::size_of::<Header>();
/// The value of `ready` once the writer is done.
pub const READY: u64 = 1;
// ANCHOR_END: layout
/// Creates the named segment `name` (such as `/lab05-message`), `size`
/// bytes of zeros, and maps it for reading and writing. Fails if a segment
/// of that name exists already.
pub fn create_segment(name: &str, size: usize) -> Result<Mapping> {
    // TODO:
    // 1. `shm_open(name, O_CREAT | O_EXCL | O_RDWR, S_IRUSR | S_IWUSR)`.
    // 2. `ftruncate` the descriptor to `size` bytes: a new segment is empty.
    // 3. `mmap(None, size, PROT_READ | PROT_WRITE, MAP_SHARED, &fd, 0)`.
    // 4. If 2 or 3 fails, `shm_unlink(name)` before returning the error.
    // The descriptor can be closed (dropped) once the memory is mapped.
    let _ = (name, size);
    todo!("create_segment: shm_open, ftruncate, mmap")
}
/// Opens the existing segment `name` and maps all of it, read-only.
pub fn open_segment(name: &str) -> Result<Mapping> {
    // TODO: `shm_open(name, O_RDONLY, Mode::empty())`, `fstat` for the
    // size (at least HEADER_LEN), then `mmap` all of it with PROT_READ and
    // MAP_SHARED.
    let _ = name;
    todo!("open_segment: shm_open, fstat, mmap read-only")
}
/// Removes the name `name`. The memory itself goes away once the last
/// process that maps it unmaps it.
pub fn remove_segment(name: &str) -> Result<()> {
    // TODO: `shm_unlink(name)`, with context.
    let _ = name;
    todo!("remove_segment: shm_unlink")
}
/// Writes `data` into the segment, then marks it ready.
pub fn write_message(segment: &Mapping, data: &[u8]) -> Result<()> {
    // TODO:
    // 1. Check that `data` fits: `segment.capacity()`.
    // 2. `let header = segment.header()?;` store MAGIC in `magic` and the
    //    length in `len` (Ordering::Relaxed is enough for these).
    // 3. Copy `data` to `segment.data_ptr()` (std::ptr::copy_nonoverlapping).
    // 4. Last, store READY in `ready` with Ordering::Release.
    let _ = (segment, data);
    todo!("write_message: header, data, then ready")
}
/// Waits (up to `patience`) until the segment is ready, then copies its
/// data out.
pub fn read_message(segment: &Mapping, patience: Duration) -> Result<Vec<u8>> {
    // TODO:
    // 1. Until `header.ready.load(Ordering::Acquire) == READY`, sleep 1 ms;
    //    give up with an error once `patience` has passed.
    // 2. Check the magic; check that `len` fits in `segment.capacity()`.
    // 3. Copy `len` bytes from `segment.data_ptr()` into a Vec.
    let _ = (segment, patience);
    todo!("read_message: wait for ready, then copy the data")
}
/// The writer's side: creates the segment `name` just big enough for
/// `data`, and writes `data` into it. The segment stays after this process
/// exits, until a reader removes it.
pub fn publish(name: &str, data: &[u8]) -> Result<()> {
    // TODO: create a segment of HEADER_LEN + data.len() bytes and write the
    // message into it. If writing fails, remove the segment. Do not remove
    // it otherwise: it is for the reader.
    let _ = (name, data);
    todo!("publish: create_segment, then write_message")
}
/// The reader's side: opens the segment `name`, waits until it is ready,
/// takes the data, and removes the segment: the reader is its last user.
pub fn receive(name: &str, patience: Duration) -> Result<Vec<u8>> {
    // TODO: open the segment, read the message (waiting up to `patience`),
    // unmap it (drop the Mapping), and remove the name: the reader is the
    // segment's last user.
    let _ = (name, patience);
    todo!("receive: open_segment, read_message, remove_segment")
}
