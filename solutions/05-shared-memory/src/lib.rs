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

use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use nix::fcntl::OFlag;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, mmap_anonymous, munmap, shm_open, shm_unlink};
use nix::sys::stat::{Mode, fstat};
use nix::unistd::ftruncate;

pub mod given;

use given::{average, join, me, start};

/// Memory mapped into this process: a start address and a length. It is
/// unmapped when dropped.
pub struct Mapping {
    ptr: NonNull<c_void>,
    len: usize,
}

impl Mapping {
    // ANCHOR: anonymous_shared
    /// Maps `len` bytes of zeroed memory that this process and every child
    /// it forks afterwards share: a write by one is seen by all.
    pub fn anonymous_shared(len: usize) -> Result<Mapping> {
        let size = NonZeroUsize::new(len).context("a mapping cannot be empty")?;
        // MAP_SHARED is the whole point: with MAP_PRIVATE, fork would give
        // each child a copy-on-write copy, as it does for the rest of the
        // memory, and nobody would see anybody else's writes.
        // SAFETY: we ask for a new mapping at an address the kernel picks,
        // so no memory Rust knows about is affected.
        let ptr = unsafe {
            mmap_anonymous(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .with_context(|| format!("mmap of {len} shared anonymous bytes"))?;
        Ok(Mapping { ptr, len })
    }
    // ANCHOR_END: anonymous_shared

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
    /// Copies `data` into the data area, just after the header. The
    /// checker may hold the process halfway through the copy
    /// ([`given::pause_point`]), to see what a reader would find then.
    pub fn write_data(&self, data: &[u8]) -> Result<()> {
        ensure!(
            data.len() <= self.capacity(),
            "{} bytes do not fit in a segment with room for {}",
            data.len(),
            self.capacity()
        );
        let half = data.len() / 2;
        // SAFETY: the data area has room for `data` (checked above).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.data_ptr(), half) };
        given::pause_point("copy");
        // SAFETY: as above, for the second half.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data[half..].as_ptr(),
                self.data_ptr().add(half),
                data.len() - half,
            )
        };
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours, and every reference into it borrows
        // `self`, so none is left.
        let _ = unsafe { munmap(self.ptr, self.len) };
    }
}

// ANCHOR: course_averages
/// Computes the average of every course, each in a worker process of its
/// own, and returns them in the order of `courses`. Worker `i` writes only
/// slot `i` of `slots` (a shared mapping of at least one word per course);
/// the parent reads every slot once all the workers have ended.
pub fn course_averages(courses: &[Vec<u32>], slots: &Mapping) -> Result<Vec<f64>> {
    let words = slots.words();
    ensure!(
        words.len() >= courses.len(),
        "{} slots for {} courses",
        words.len(),
        courses.len()
    );
    let mut workers = Vec::with_capacity(courses.len());
    for (i, grades) in courses.iter().enumerate() {
        let slot = &words[i];
        let worker = start(|| {
            // This worker's slot, and no other: no two processes ever
            // write the same bytes, so they need no lock.
            slot.store(average(grades).to_bits(), Ordering::Relaxed);
            println!("worker {i} pid={} wrote slot {i}", me());
            0
        });
        match worker {
            Ok(pid) => workers.push(pid),
            Err(e) => {
                for pid in workers {
                    let _ = join(pid);
                }
                return Err(e);
            }
        }
    }
    // ANCHOR_END: course_averages
    // ANCHOR: course_averages_read
    // waitpid returns only after the child has exited, so everything the
    // child wrote before exiting is there for the parent to read.
    for pid in workers {
        join(pid)?;
    }
    Ok(words[..courses.len()]
        .iter()
        .map(|w| f64::from_bits(w.load(Ordering::Relaxed)))
        .collect())
}
// ANCHOR_END: course_averages_read

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

// ANCHOR: create_segment
/// Creates the named segment `name` (such as `/lab05-message`), `size`
/// bytes of zeros, and maps it for reading and writing. Fails if a segment
/// of that name exists already.
pub fn create_segment(name: &str, size: usize) -> Result<Mapping> {
    let len = NonZeroUsize::new(size).context("a segment cannot be empty")?;
    // O_EXCL: a leftover from an earlier run is an error, not something to
    // silently reuse with stale contents.
    let fd = shm_open(
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
        Mode::S_IRUSR | Mode::S_IWUSR,
    )
    .with_context(|| format!("shm_open({name}, O_CREAT | O_EXCL)"))?;
    let mapped = (|| {
        // A new segment is 0 bytes long: touching a page beyond its end
        // kills the process with SIGBUS. Give it its size first.
        ftruncate(&fd, size as i64).with_context(|| format!("ftruncate({name}, {size})"))?;
        // SAFETY: a new mapping at an address the kernel picks.
        unsafe {
            mmap(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                &fd,
                0,
            )
        }
        .with_context(|| format!("mmap({name})"))
    })();
    // The descriptor closes here; the mapping stays valid without it.
    drop(fd);
    match mapped {
        Ok(ptr) => Ok(Mapping { ptr, len: size }),
        Err(e) => {
            // Do not leave a half-made segment behind.
            let _ = shm_unlink(name);
            Err(e)
        }
    }
}
// ANCHOR_END: create_segment

// ANCHOR: open_segment
/// Opens the existing segment `name` and maps all of it, read-only.
pub fn open_segment(name: &str) -> Result<Mapping> {
    let fd = shm_open(name, OFlag::O_RDONLY, Mode::empty())
        .with_context(|| format!("shm_open({name}, O_RDONLY)"))?;
    let size = fstat(&fd)
        .with_context(|| format!("fstat({name})"))?
        .st_size as usize;
    ensure!(
        size >= HEADER_LEN,
        "segment {name} has {size} bytes, less than its {HEADER_LEN}-byte header"
    );
    let len = NonZeroUsize::new(size).context("empty segment")?;
    // SAFETY: a new mapping at an address the kernel picks.
    let ptr = unsafe {
        mmap(
            None,
            len,
            ProtFlags::PROT_READ,
            MapFlags::MAP_SHARED,
            &fd,
            0,
        )
    }
    .with_context(|| format!("mmap({name})"))?;
    Ok(Mapping { ptr, len: size })
}
// ANCHOR_END: open_segment

// ANCHOR: remove_segment
/// Removes the name `name`. The memory itself goes away once the last
/// process that maps it unmaps it.
pub fn remove_segment(name: &str) -> Result<()> {
    shm_unlink(name).with_context(|| format!("shm_unlink({name})"))
}
// ANCHOR_END: remove_segment

// ANCHOR: write_message
/// Writes `data` into the segment, then marks it ready.
pub fn write_message(segment: &Mapping, data: &[u8]) -> Result<()> {
    ensure!(
        data.len() <= segment.capacity(),
        "{} bytes do not fit in a segment with room for {}",
        data.len(),
        segment.capacity()
    );
    let header = segment.header()?;
    header.magic.store(MAGIC, Ordering::Relaxed);
    header.len.store(data.len() as u64, Ordering::Relaxed);
    // No reader looks at the data before `ready` says so.
    segment.write_data(data)?;
    // Release: every write above is visible to whoever sees ready == 1
    // with an Acquire load. Without it, the CPU or the compiler may make
    // `ready` visible before the data.
    header.ready.store(READY, Ordering::Release);
    Ok(())
}
// ANCHOR_END: write_message

// ANCHOR: read_message
/// Waits (up to `patience`) until the segment is ready, then copies its
/// data out.
pub fn read_message(segment: &Mapping, patience: Duration) -> Result<Vec<u8>> {
    let header = segment.header()?;
    let until = Instant::now() + patience;
    // Acquire pairs with the writer's Release: once we see READY, we also
    // see the magic, the length and the data written before it.
    while header.ready.load(Ordering::Acquire) != READY {
        if Instant::now() >= until {
            bail!("the segment was not ready after {patience:?}");
        }
        // A short nap, not a busy loop: lab 07 replaces this with a
        // semaphore the writer posts.
        std::thread::sleep(Duration::from_millis(1));
    }
    let magic = header.magic.load(Ordering::Relaxed);
    ensure!(
        magic == MAGIC,
        "not a lab 05 segment: magic {magic:#x}, expected {MAGIC:#x}"
    );
    let len = header.len.load(Ordering::Relaxed) as usize;
    ensure!(
        len <= segment.capacity(),
        "the header says {len} bytes, but only {} follow it",
        segment.capacity()
    );
    let mut data = vec![0u8; len];
    // SAFETY: `len` bytes of data follow the header (checked above).
    unsafe { std::ptr::copy_nonoverlapping(segment.data_ptr(), data.as_mut_ptr(), len) };
    Ok(data)
}
// ANCHOR_END: read_message

// ANCHOR: publish
/// The writer's side: creates the segment `name` just big enough for
/// `data`, and writes `data` into it. The segment stays after this process
/// exits, until a reader removes it.
pub fn publish(name: &str, data: &[u8]) -> Result<()> {
    let segment = create_segment(name, HEADER_LEN + data.len())?;
    if let Err(e) = write_message(&segment, data) {
        let _ = remove_segment(name);
        return Err(e);
    }
    Ok(())
}
// ANCHOR_END: publish

// ANCHOR: receive
/// The reader's side: opens the segment `name`, waits until it is ready,
/// takes the data, and removes the segment: the reader is its last user.
pub fn receive(name: &str, patience: Duration) -> Result<Vec<u8>> {
    let segment = open_segment(name)?;
    let data = read_message(&segment, patience)?;
    drop(segment);
    remove_segment(name)?;
    Ok(data)
}
// ANCHOR_END: receive
