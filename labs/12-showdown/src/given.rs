//! Given code shared by the programs in `src/bin/`. You do not need to edit it.
//!
//! Processes (`start`, `join`), shared memory and futexes were the subjects
//! of earlier labs; here they are given, so that this lab can be about
//! putting the mechanisms side by side and measuring them.

// What the programs of every lab share is written once, in the course's
// crate `lab-program` (crates/lab-program); this file keeps what is
// specific to this lab.
pub use lab_program::{hold, ipc_name, main_with, me};

use std::ffi::c_void;
use std::io::Write;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sched::{CpuSet, sched_getaffinity, sched_getcpu, sched_setaffinity};
use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, munmap};
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

/// Starts a child process that runs `work` and exits with status 0 if it
/// returns `Ok`, 1 (after printing the error) if not. Returns the child's
/// pid, in the parent only.
pub fn start(work: impl FnOnce() -> Result<()>) -> Result<Pid> {
    std::io::stdout()
        .flush()
        .context("flushing stdout before fork")?;
    // SAFETY: the programs of this lab are single-threaded.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            let run = || pin_child().and_then(|()| work());
            let status = match catch_unwind(AssertUnwindSafe(run)) {
                Ok(Ok(())) => 0,
                Ok(Err(e)) => {
                    eprintln!("error in child {}: {e:#}", me());
                    1
                }
                Err(_) => 101,
            };
            let _ = std::io::stdout().flush();
            // SAFETY: _exit ends the child without running the parent's
            // clean-up (destructors, atexit handlers); it does not return.
            unsafe { libc::_exit(status) }
        }
    }
}

/// Makes a connection of `mech` and forks: the child opens its end and
/// runs `work` with it, then exits; the parent opens its end and gets it
/// back, with the child's pid to [`join`] once done with the end.
pub fn connect(
    mech: crate::Mechanism,
    work: impl FnOnce(&mut dyn crate::Transport) -> Result<()>,
) -> Result<(Pid, Box<dyn crate::Transport>)> {
    use crate::Side;
    let prepared = crate::prepare(mech)?;
    std::io::stdout()
        .flush()
        .context("flushing stdout before fork")?;
    // SAFETY: the programs of this lab are single-threaded.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Parent { child } => {
            let end = prepared
                .open(Side::Parent)
                .with_context(|| format!("opening the parent's end of a {}", mech.name()))?;
            Ok((child, end))
        }
        ForkResult::Child => {
            let run = || -> Result<()> {
                pin_child()?;
                let mut end = prepared
                    .open(Side::Child)
                    .with_context(|| format!("opening the child's end of a {}", mech.name()))?;
                work(end.as_mut())
            };
            let status = match catch_unwind(AssertUnwindSafe(run)) {
                Ok(Ok(())) => 0,
                Ok(Err(e)) => {
                    eprintln!("error in child {}: {e:#}", me());
                    1
                }
                Err(_) => 101,
            };
            let _ = std::io::stdout().flush();
            // SAFETY: as in `start`.
            unsafe { libc::_exit(status) }
        }
    }
}

/// The CPUs chosen by [`pin_two_cores`]: this process's, and its children's.
static CPUS: OnceLock<(usize, usize)> = OnceLock::new();

/// For measurements: keeps this process on one CPU, and every child that
/// [`start`] or [`connect`] forks from now on on another one. Each run
/// then measures the same thing, two processes on two cores, instead of
/// whatever the scheduler happened to do (two processes that share a CPU
/// take turns, and a wake-up on the same CPU costs far less than one
/// across CPUs). Returns false, and pins nothing, with fewer than two
/// CPUs to use.
pub fn pin_two_cores() -> Result<bool> {
    let cpus = allowed_cpus()?;
    if cpus.len() < 2 {
        let _ = SPINNING.set(false);
        return Ok(false);
    }
    // Start from the CPU this process runs on, so that several harnesses
    // at once (a class graded in parallel) spread over the machine, and
    // give the children the next CPU that is not a hyperthread of the
    // same core: two threads of one core share its caches.
    let here = sched_getcpu().unwrap_or(cpus[0]);
    let at = cpus.iter().position(|&c| c == here).unwrap_or(0);
    let mine = cpus[at];
    let theirs = (1..cpus.len())
        .map(|k| cpus[(at + k) % cpus.len()])
        .find(|&c| !same_core(mine, c))
        .unwrap_or(cpus[(at + 1) % cpus.len()]);
    // Decided before pinning, which leaves this process one CPU.
    let _ = SPINNING.set(true);
    pin_to(mine)?;
    let _ = CPUS.set((mine, theirs));
    Ok(true)
}

/// Whether two CPUs are hyperthreads of one core, as far as
/// `/sys/devices/system/cpu` says (false where it says nothing).
fn same_core(a: usize, b: usize) -> bool {
    let id = |cpu: usize, what: &str| {
        std::fs::read_to_string(format!("/sys/devices/system/cpu/cpu{cpu}/topology/{what}"))
            .ok()
            .map(|s| s.trim().to_string())
    };
    let core = |cpu| Some((id(cpu, "physical_package_id")?, id(cpu, "core_id")?));
    matches!((core(a), core(b)), (Some(x), Some(y)) if x == y)
}

fn pin_to(cpu: usize) -> Result<()> {
    let mut one = CpuSet::new();
    one.set(cpu).context("a CPU number out of range")?;
    sched_setaffinity(Pid::from_raw(0), &one).with_context(|| format!("moving to CPU {cpu}"))
}

/// In a child: moves to the children's CPU, if [`pin_two_cores`] chose one.
fn pin_child() -> Result<()> {
    match CPUS.get() {
        Some(&(_, theirs)) => pin_to(theirs),
        None => Ok(()),
    }
}

/// Waits for the child `pid` and fails unless it exited with status 0.
pub fn join(pid: Pid) -> Result<()> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, 0)) => return Ok(()),
            Ok(WaitStatus::Exited(_, code)) => bail!("child {pid} exited with status {code}"),
            Ok(other) => bail!("child {pid} ended badly: {other:?}"),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).with_context(|| format!("waitpid({pid})")),
        }
    }
}

/// Prints `text` on stdout. A reader that has gone away (`bench | head`)
/// ends the program quietly, as it does any Unix filter, not with a panic.
pub fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}

/// Memory shared by this process and every child it forks afterwards
/// (an anonymous MAP_SHARED mapping, as in lab 05). Unmapped on drop.
pub struct SharedMemory {
    ptr: NonNull<c_void>,
    len: usize,
}

impl SharedMemory {
    /// Maps `len` zeroed bytes, aligned to a page.
    pub fn new(len: usize) -> Result<SharedMemory> {
        let size = NonZeroUsize::new(len).context("a mapping cannot be empty")?;
        // SAFETY: a new mapping at an address the kernel picks.
        let ptr = unsafe {
            mmap_anonymous(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .with_context(|| format!("mmap of {len} shared bytes"))?;
        Ok(SharedMemory { ptr, len })
    }

    /// The first byte.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr().cast()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The 32-bit word at byte `offset` (a multiple of 4), as an atomic.
    pub fn word(&self, offset: usize) -> &AtomicU32 {
        assert!(offset % 4 == 0 && offset + 4 <= self.len, "word {offset}");
        // SAFETY: aligned, inside the mapping, which lives as long as
        // `self`; any bits are a valid u32.
        unsafe { &*self.as_ptr().add(offset).cast::<AtomicU32>() }
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        // SAFETY: our mapping, and nothing borrows it any more.
        let _ = unsafe { munmap(self.ptr, self.len) };
    }
}

/// Sleeps while `word` still holds `expected`. Returns when woken, when
/// the word had already changed, or on a signal: always look again.
/// The word must be in memory shared between the processes (no
/// FUTEX_PRIVATE_FLAG here, so that the kernel matches it across them).
pub fn futex_wait(word: &AtomicU32, expected: u32) -> Result<()> {
    // SAFETY: `word` is a valid, aligned 32-bit word for the whole call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            std::ptr::null::<libc::timespec>(),
        )
    };
    if r == -1 {
        match Errno::last() {
            Errno::EAGAIN | Errno::EINTR => {}
            e => return Err(e).context("futex(FUTEX_WAIT)"),
        }
    }
    Ok(())
}

/// Wakes every process sleeping in [`futex_wait`] on `word`.
pub fn futex_wake(word: &AtomicU32) -> Result<()> {
    // SAFETY: as for futex_wait.
    let r = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX) };
    if r == -1 {
        return Err(Errno::last()).context("futex(FUTEX_WAKE)");
    }
    Ok(())
}

/// CPU time (user + system) used so far by this process and by every
/// child it has already waited for.
pub fn cpu_time() -> Result<Duration> {
    let mut total = Duration::ZERO;
    for who in [UsageWho::RUSAGE_SELF, UsageWho::RUSAGE_CHILDREN] {
        let u = getrusage(who).context("getrusage")?;
        for t in [u.user_time(), u.system_time()] {
            total +=
                Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64);
        }
    }
    Ok(total)
}

/// Reads the messages of a file made of frames: a 4-byte little-endian
/// length, then that many bytes.
pub fn read_frames(path: &str) -> Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let Some(header) = bytes.get(at..at + 4) else {
            bail!("{path}: a cut length at byte {at}");
        };
        let len = u32::from_le_bytes(header.try_into().expect("4 bytes")) as usize;
        let Some(body) = bytes.get(at + 4..at + 4 + len) else {
            bail!("{path}: a message of {len} bytes at byte {at} is cut short");
        };
        out.push(body.to_vec());
        at += 4 + len;
    }
    Ok(out)
}

/// Appends one frame to `file`, in one write so that it is either all
/// there or not at all when the checker looks.
pub fn write_frame_to(file: &mut std::fs::File, msg: &[u8]) -> Result<()> {
    let mut frame = Vec::with_capacity(4 + msg.len());
    frame.extend_from_slice(&(msg.len() as u32).to_le_bytes());
    frame.extend_from_slice(msg);
    file.write_all(&frame).context("writing a received message")
}

// ---------------------------------------------------------------------
// The floors: what the hardware and the kernel cost with no mechanism.
// ---------------------------------------------------------------------

/// How long a waiting process keeps looking at a shared word before it
/// goes to sleep in the kernel. A sleep and a wake-up cost tens of
/// microseconds; when the other process answers sooner than that (it is
/// running on another core, in the middle of its work), looking again is
/// cheaper than sleeping.
pub const SPIN: Duration = Duration::from_micros(20);

/// Whether looking before sleeping can pay: only if the other process
/// can be running at the same moment, on another CPU. With one CPU, the
/// other process runs only once this one stops, so every look is wasted.
static SPINNING: OnceLock<bool> = OnceLock::new();

/// The CPUs this process may run on.
fn allowed_cpus() -> Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0)).context("sched_getaffinity")?;
    Ok((0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect())
}

// ANCHOR: spin_while
/// Looks at `word` for up to [`SPIN`] without sleeping. Returns true as
/// soon as it no longer holds `seen`, false if it still does after SPIN
/// (then sleep, in [`futex_wait`], instead of burning a CPU). Returns
/// false at once where this process may use only one CPU.
pub fn spin_while(word: &AtomicU32, seen: u32) -> bool {
    if !*SPINNING.get_or_init(|| allowed_cpus().is_ok_and(|cpus| cpus.len() >= 2)) {
        return false;
    }
    let start = Instant::now();
    loop {
        // Reading the clock costs more than a look: look 64 times per read.
        for _ in 0..64 {
            if word.load(Ordering::Acquire) != seen {
                return true;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= SPIN {
            return false;
        }
    }
}
// ANCHOR_END: spin_while

/// Waits until `word` holds at least `want` (counters that only grow):
/// looks for a while, then sleeps with `asleep` raised so that the other
/// side, which stores `word` and then looks at `asleep`, wakes it.
fn wait_for_count(word: &AtomicU32, want: u32, asleep: &AtomicU32) -> Result<()> {
    loop {
        let now = word.load(Ordering::SeqCst);
        if now.wrapping_sub(want) as i32 >= 0 {
            return Ok(());
        }
        if spin_while(word, now) {
            continue;
        }
        asleep.store(1, Ordering::SeqCst);
        if word.load(Ordering::SeqCst) == now {
            futex_wait(word, now)?;
        }
        asleep.store(0, Ordering::SeqCst);
    }
}

/// Stores a new count in `word`, and wakes the other side if it sleeps.
fn announce(word: &AtomicU32, count: u32, asleep: &AtomicU32) -> Result<()> {
    word.store(count, Ordering::SeqCst);
    if asleep.load(Ordering::SeqCst) != 0 {
        futex_wake(word)?;
    }
    Ok(())
}

// ANCHOR: copy_floor
/// The copy floor, in MB/s (10^6 bytes per second): the fastest messages
/// of `size` bytes can stream from one process into another's own memory
/// with no mechanism at all. Both processes share RING_DATA bytes cut
/// into slots of `size` (at least two); the parent writes each message
/// into the next free slot, as a sender must, and the child, on another
/// core, copies it out, as a receiver must. No framing, no system call
/// while both keep up: only the two copies and two counters. Timed from
/// the first message to the child's last copy, `count` messages.
///
/// Compare it with [`memcpy_bandwidth`]: the bytes one core has just
/// written are in its own cache, and the other core must fetch them from
/// there (and the writer must take back lines the reader still holds).
/// On most machines that costs far more than a copy within one core.
pub fn copy_floor(size: usize, count: usize) -> Result<f64> {
    let size = size.max(1);
    let slots = (crate::RING_DATA / size).max(2);
    // A page for the counters (each on its own cache line), then slots.
    const WRITTEN: usize = 0;
    const COPIED: usize = 64;
    const CHILD_ASLEEP: usize = 128;
    const PARENT_ASLEEP: usize = 192;
    let shared = SharedMemory::new(4096 + slots * size)?;
    let slot = |k: u32| {
        // SAFETY: slot k % slots lies inside the mapping.
        unsafe { shared.as_ptr().add(4096 + (k as usize % slots) * size) }
    };
    let child = start(|| {
        let (written, copied) = (shared.word(WRITTEN), shared.word(COPIED));
        let mut mine = vec![0u8; size];
        for k in 0..count as u32 {
            wait_for_count(written, k.wrapping_add(1), shared.word(CHILD_ASLEEP))?;
            // SAFETY: the parent wrote slot k before counting it (SeqCst
            // store, read SeqCst), and does not write it again until we
            // count it copied; `mine` has room for `size` bytes.
            unsafe { std::ptr::copy_nonoverlapping(slot(k), mine.as_mut_ptr(), size) };
            std::hint::black_box(&mut mine);
            announce(copied, k.wrapping_add(1), shared.word(PARENT_ASLEEP))?;
        }
        Ok(())
    })?;
    let (written, copied) = (shared.word(WRITTEN), shared.word(COPIED));
    let mut from = vec![0x5au8; size];
    let started = Instant::now();
    for k in 0..count as u32 {
        // Slot k is free once message k - slots has been copied out.
        if k as usize >= slots {
            let free = k - slots as u32 + 1;
            wait_for_count(copied, free, shared.word(PARENT_ASLEEP))?;
        }
        from[k as usize % size] ^= 1;
        // SAFETY: the child is done with slot k (above), and both ranges
        // are `size` bytes long.
        unsafe { std::ptr::copy_nonoverlapping(from.as_ptr(), slot(k), size) };
        announce(written, k.wrapping_add(1), shared.word(CHILD_ASLEEP))?;
    }
    wait_for_count(copied, count as u32, shared.word(PARENT_ASLEEP))?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    join(child)?;
    Ok((size * count) as f64 / secs / 1e6)
}
// ANCHOR_END: copy_floor

/// For scale, not a floor: memory copy bandwidth within one process, in
/// MB/s, for `count` copies of `size` bytes between two buffers that stay
/// in this core's cache.
pub fn memcpy_bandwidth(size: usize, count: usize) -> f64 {
    let from = vec![0x5au8; size.max(1)];
    let mut to = vec![0u8; size.max(1)];
    // Warm up: touch both buffers once so that page faults are not timed.
    to.copy_from_slice(&from);
    let start = Instant::now();
    for i in 0..count {
        to.copy_from_slice(std::hint::black_box(&from));
        std::hint::black_box(&mut to)[i % size.max(1)] ^= 1;
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    (size * count) as f64 / secs / 1e6
}

/// A futex ping-pong between two processes: the parent sets a shared word
/// to "ping" and wakes the child; the child sets it to "pong" and wakes
/// the parent. Returns one sample per round trip, and the CPU time the
/// two processes used for all of them.
pub fn futex_floor(count: usize) -> Result<(Vec<Duration>, Duration)> {
    const PING: u32 = 1;
    const PONG: u32 = 2;
    let page = SharedMemory::new(4096)?;
    let cpu_before = cpu_time()?;
    let child = start(|| {
        let word = page.word(0);
        for _ in 0..count {
            while word.load(Ordering::Acquire) != PING {
                futex_wait(word, PONG)?;
            }
            word.store(PONG, Ordering::Release);
            futex_wake(word)?;
        }
        Ok(())
    })?;
    let word = page.word(0);
    word.store(PONG, Ordering::Release);
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let t = Instant::now();
        word.store(PING, Ordering::Release);
        futex_wake(word)?;
        while word.load(Ordering::Acquire) != PONG {
            futex_wait(word, PING)?;
        }
        samples.push(t.elapsed());
    }
    join(child)?;
    let cpu = cpu_time()? - cpu_before;
    Ok((samples, cpu))
}

// ---------------------------------------------------------------------
// The report: a table on stdout, bars, and a CSV file.
// ---------------------------------------------------------------------

/// One line of results: the floor or a mechanism.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    /// Round trips of a small message, and its size.
    pub messages: usize,
    pub small_bytes: usize,
    pub median_ns: u64,
    pub p99_ns: u64,
    /// Large messages sent one way, and their size.
    pub large_bytes: usize,
    pub mb_per_s: f64,
    /// CPU time of both processes per round trip.
    pub cpu_ns_per_msg: u64,
}

/// The columns of the CSV file, in order.
pub const CSV_HEADER: &str = "name,messages,small_bytes,median_ns,p99_ns,latency_ratio,large_bytes,mb_per_s,throughput_ratio,cpu_ns_per_msg,cpu_ratio";

fn ratio(x: f64, floor: f64) -> f64 {
    if floor > 0.0 { x / floor } else { 0.0 }
}

/// The CSV text: the floor first, then every mechanism, each figure with
/// its ratio to the floor.
pub fn csv(floor: &Row, rows: &[Row]) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    for r in std::iter::once(floor).chain(rows) {
        out.push_str(&format!(
            "{},{},{},{},{},{:.3},{},{:.1},{:.3},{},{:.3}\n",
            r.name,
            r.messages,
            r.small_bytes,
            r.median_ns,
            r.p99_ns,
            ratio(r.median_ns as f64, floor.median_ns as f64),
            r.large_bytes,
            r.mb_per_s,
            ratio(r.mb_per_s, floor.mb_per_s),
            r.cpu_ns_per_msg,
            ratio(r.cpu_ns_per_msg as f64, floor.cpu_ns_per_msg as f64),
        ));
    }
    out
}

fn micros(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}

fn bar(value: f64, max: f64, width: usize) -> String {
    let n = if max > 0.0 {
        ((value / max) * width as f64).round() as usize
    } else {
        0
    };
    "#".repeat(n.clamp(1, width))
}

/// The table and the bar charts, as the harness prints them; `memcpy` is
/// [`memcpy_bandwidth`], shown for scale.
pub fn table(floor: &Row, rows: &[Row], memcpy: f64) -> String {
    let mut out = String::new();
    let small = rows.first().map_or(0, |r| r.small_bytes);
    out.push_str(&format!(
        "{} round trips of {} bytes; {} one-way messages of {} bytes\n\n",
        floor.messages, small, floor.messages, floor.large_bytes
    ));
    out.push_str(&format!(
        "{:<8} {:>9} {:>9} {:>6}   {:>9} {:>6}   {:>9} {:>6}\n",
        "", "median", "p99", "x", "MB/s", "x", "CPU/msg", "x"
    ));
    out.push_str(&format!(
        "{:<8} {:>9} {:>9} {:>6}   {:>9} {:>6}   {:>9} {:>6}\n",
        "", "(us)", "(us)", "floor", "", "floor", "(us)", "floor"
    ));
    for r in std::iter::once(floor).chain(rows) {
        out.push_str(&format!(
            "{:<8} {:>9} {:>9} {:>6.2}   {:>9.0} {:>6.2}   {:>9} {:>6.2}\n",
            r.name,
            micros(r.median_ns),
            micros(r.p99_ns),
            ratio(r.median_ns as f64, floor.median_ns as f64),
            r.mb_per_s,
            ratio(r.mb_per_s, floor.mb_per_s),
            micros(r.cpu_ns_per_msg),
            ratio(r.cpu_ns_per_msg as f64, floor.cpu_ns_per_msg as f64),
        ));
    }
    let max_lat = rows.iter().map(|r| r.median_ns).max().unwrap_or(1) as f64;
    out.push_str("\nround-trip latency, median (shorter is better)\n");
    for r in std::iter::once(floor).chain(rows) {
        out.push_str(&format!(
            "{:<8} {:<40} {} us\n",
            r.name,
            bar(r.median_ns as f64, max_lat, 40),
            micros(r.median_ns)
        ));
    }
    let max_bw = std::iter::once(floor)
        .chain(rows)
        .map(|r| r.mb_per_s)
        .fold(0.0, f64::max);
    out.push_str(&format!(
        "\nthroughput of {}-byte messages (longer is better; floor = a copy from one process to another)\n",
        floor.large_bytes
    ));
    for r in std::iter::once(floor).chain(rows) {
        out.push_str(&format!(
            "{:<8} {:<40} {:.0} MB/s\n",
            r.name,
            bar(r.mb_per_s, max_bw, 40),
            r.mb_per_s
        ));
    }
    out.push_str(&format!(
        "\nfor scale: a copy within one process, cache to cache: {memcpy:.0} MB/s ({:.1} x the floor)\n",
        ratio(memcpy, floor.mb_per_s)
    ));
    out
}
