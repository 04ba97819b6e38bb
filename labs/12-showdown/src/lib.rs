//! Lab 12 — the showdown: one interface, five mechanisms, measured.
//!
//! You write:
//!
//! - [`write_frame`] and [`read_frame`], which turn a byte stream (a pipe,
//!   a FIFO, a socket) into whole messages;
//! - [`prepare`] and [`Prepared::open`], which make each mechanism's
//!   objects before `fork` and give each side its end after;
//! - [`QueueEnd`], messages over two POSIX message queues, cut into
//!   chunks no larger than the queue allows;
//! - [`RingEnd`], messages through two rings in shared memory, with futex
//!   wake-ups;
//! - [`round_trips`], [`one_way`] and [`Latency::of`], the measurements the
//!   harness (`src/bin/bench.rs`) reports.
//!
//! The programs in `src/bin/` are given: `relay` is what the checker drives
//! to test every transport, `bench` is the harness (`cargo lab bench`).
//! Edit this file only. Read chapter 12 of the book first; `cargo lab hint
//! 12` helps when stuck.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::mqueue::{MqdT, mq_close, mq_receive, mq_send};

pub mod given;

use given::SharedMemory;

/// The five mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Pipe,
    Fifo,
    Socket,
    Queue,
    Ring,
}

impl Mechanism {
    pub const ALL: [Mechanism; 5] = [
        Mechanism::Pipe,
        Mechanism::Fifo,
        Mechanism::Socket,
        Mechanism::Queue,
        Mechanism::Ring,
    ];

    /// The name the programs take and print: `pipe`, `fifo`, ...
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Pipe => "pipe",
            Mechanism::Fifo => "fifo",
            Mechanism::Socket => "socket",
            Mechanism::Queue => "queue",
            Mechanism::Ring => "ring",
        }
    }

    pub fn parse(name: &str) -> Result<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .with_context(|| format!("no mechanism {name:?}: pipe, fifo, socket, queue or ring"))
    }
}

/// Which end of a connection this process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Parent,
    Child,
}

// ANCHOR: transport
/// A two-way connection between two processes that carries whole
/// messages: every byte arrives, in order, and a message comes out of
/// `recv` exactly as it went into `send`, however large (or empty).
pub trait Transport {
    /// Sends all of `msg`, as one message.
    fn send(&mut self, msg: &[u8]) -> Result<()>;
    /// Waits for the next message and puts it in `buf` (cleared first).
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()>;
}
// ANCHOR_END: transport

/// The largest message any transport accepts: a length above it means
/// the stream is out of step, not that someone sent 4 GiB.
pub const MAX_MESSAGE: usize = 64 << 20;

/// Messages up to this size go out in one write, header included.
pub const SMALL: usize = 4096;

// ANCHOR: framing
/// Writes one message to a byte stream: its length (4 bytes, little
/// endian), then its bytes. `write_all` loops over short writes and
/// retries on EINTR.
pub fn write_frame(out: &mut impl Write, msg: &[u8]) -> Result<()> {
    // TODO: write the length of `msg` as 4 little-endian bytes
    // (`(msg.len() as u32).to_le_bytes()`), then the bytes themselves.
    // Refuse a message above MAX_MESSAGE. Use `write_all`, never a single
    // `write`: it loops over short writes and retries on EINTR. For a
    // message up to SMALL bytes, put the header and the bytes in one
    // buffer and write it at once (one system call, one wake-up).
    let _ = (out, msg);
    todo!("write_frame: a 4-byte length, then the bytes")
}

/// Reads one message written by [`write_frame`]. A single `read` may
/// return less than asked (a pipe holds 64 KiB): `read_exact` loops until
/// the whole message is there.
pub fn read_frame(input: &mut impl Read, buf: &mut Vec<u8>) -> Result<()> {
    // TODO: `read_exact` the 4-byte length, refuse one above MAX_MESSAGE
    // (the stream is out of step), then resize `buf` to the length and
    // `read_exact` the bytes into it. A single `read` is not enough: it
    // returns what the pipe holds (at most 64 KiB), not what you asked.
    let _ = (input, buf);
    todo!("read_frame: read_exact the length, then the bytes")
}
// ANCHOR_END: framing

/// Any pair of byte streams, one to read and one to write, as a transport:
/// pipes, FIFOs, a socket.
pub struct StreamEnd<R, W> {
    rx: R,
    tx: W,
}

impl<R: Read, W: Write> Transport for StreamEnd<R, W> {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        write_frame(&mut self.tx, msg)
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        read_frame(&mut self.rx, buf)
    }
}

/// A mechanism's objects, made before `fork` so that both processes have
/// them; after `fork` each side calls [`Prepared::open`].
pub enum Prepared {
    /// Two pipes: `down` carries parent to child, `up` child to parent.
    /// Each is (read end, write end).
    Pipe {
        down: (OwnedFd, OwnedFd),
        up: (OwnedFd, OwnedFd),
    },
    /// Two FIFOs in the current directory, opened after fork.
    Fifo { down: PathBuf, up: PathBuf },
    /// A connected pair of Unix stream sockets.
    Socket {
        parent: UnixStream,
        child: UnixStream,
    },
    /// Two message queues, already removed from /dev/mqueue: the
    /// descriptors keep them alive, and fork copies the descriptors.
    Queue { down: Mq, up: Mq },
    /// Two rings in one shared mapping.
    Ring(SharedMemory),
}

/// A message queue descriptor, closed on drop.
pub struct Mq(Option<MqdT>);

impl Mq {
    pub fn get(&self) -> &MqdT {
        self.0.as_ref().expect("an open queue")
    }
}

impl Drop for Mq {
    fn drop(&mut self) {
        if let Some(q) = self.0.take() {
            let _ = mq_close(q);
        }
    }
}

// ANCHOR: prepare
/// Makes what `mech` needs before `fork`.
pub fn prepare(mech: Mechanism) -> Result<Prepared> {
    // TODO: make what each mechanism needs before fork:
    // - Pipe: two `nix::unistd::pipe()`s, `down` (parent to child), `up`;
    // - Fifo: two paths from `unique_path("down")` and `unique_path("up")`,
    //   each made with `nix::unistd::mkfifo(path, S_IRUSR | S_IWUSR)`;
    // - Socket: `UnixStream::pair()`;
    // - Queue: `new_queue("down")` and `new_queue("up")`;
    // - Ring: `SharedMemory::new(2 * RING_BYTES)`.
    let _ = mech;
    todo!("prepare: make each mechanism's objects before fork")
}
// ANCHOR_END: prepare

/// A path in the current directory that no other run uses.
pub fn unique_path(what: &str) -> Result<PathBuf> {
    static MADE: AtomicU32 = AtomicU32::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::current_dir().context("the current directory")?;
    Ok(dir.join(format!("showdown-{}-{n}-{what}", given::me())))
}

impl Prepared {
    // ANCHOR: open
    /// This side's end. Closes the other side's descriptors, so that each
    /// process holds only what it uses.
    pub fn open(self, side: Side) -> Result<Box<dyn Transport>> {
        // TODO: return this side's end; the parent sends on `down` and
        // receives on `up`, the child the reverse.
        // - Pipe: keep (read end of up, write end of down) in the parent,
        //   (read end of down, write end of up) in the child, as `File`s in
        //   a `StreamEnd`; the ends you do not keep are closed when dropped.
        // - Fifo: both sides open `down` first, then `up` (the parent
        //   writes down and reads up). Each open waits for the other side,
        //   so opposite orders would deadlock. The parent then removes both
        //   paths: open FIFOs work without their names.
        // - Socket: this side's stream, and a `try_clone` of it to write.
        // - Queue: `QueueEnd::new(rx, tx)` with the right two queues.
        // - Ring: `RingEnd::new(memory, rx, tx)`: the parent writes ring 0
        //   and reads ring 1, the child the reverse.
        let _ = self;
        let _ = side;
        todo!("open: this side's end of each mechanism")
    }
    // ANCHOR_END: open
}

// ---------------------------------------------------------------------
// POSIX message queues
// ---------------------------------------------------------------------

/// Messages a queue holds before `mq_send` blocks, and the largest
/// message it takes: the system's defaults (`/proc/sys/fs/mqueue/msg_max`
/// and `msgsize_max`), which any user may ask for.
pub const QUEUE_DEPTH: i64 = 10;
pub const QUEUE_MSG: usize = 8192;

// ANCHOR: new_queue
/// Creates a queue with a fresh name, and removes the name at once: the
/// queue lives on as long as a descriptor refers to it, and nothing is
/// left behind even if the program is killed.
pub fn new_queue(what: &str) -> Result<Mq> {
    // TODO: `mq_open` the name `given::ipc_name(&format!("{what}-{}",
    // given::me()))` with O_CREAT | O_EXCL | O_RDWR, mode 0o600 and
    // `MqAttr::new(0, QUEUE_DEPTH, QUEUE_MSG as i64, 0)`; wrap it in
    // `Mq(Some(q))`, then `mq_unlink` the name at once: the descriptors
    // (which fork copies) keep the queue alive, and nothing is left behind.
    let _ = what;
    todo!("new_queue: mq_open, then mq_unlink at once")
}
// ANCHOR_END: new_queue

/// One side of two message queues: it receives on `rx`, sends on `tx`.
pub struct QueueEnd {
    pub rx: Mq,
    pub tx: Mq,
    pub chunk: Vec<u8>,
}

impl QueueEnd {
    pub fn new(rx: Mq, tx: Mq) -> QueueEnd {
        QueueEnd {
            rx,
            tx,
            chunk: vec![0; QUEUE_MSG],
        }
    }

    pub fn send_chunk(&self, chunk: &[u8]) -> Result<()> {
        loop {
            match mq_send(self.tx.get(), chunk, 0) {
                Err(Errno::EINTR) => continue,
                r => return r.context("mq_send"),
            }
        }
    }

    pub fn recv_chunk(&mut self) -> Result<usize> {
        let mut prio = 0;
        loop {
            match mq_receive(self.rx.get(), &mut self.chunk, &mut prio) {
                Err(Errno::EINTR) => continue,
                r => return r.context("mq_receive"),
            }
        }
    }
}

// ANCHOR: queue
/// A queue keeps message boundaries, but a message may hold at most
/// QUEUE_MSG bytes. So a message goes out as chunks: the first starts
/// with the total length (4 bytes), the others are pure data.
impl Transport for QueueEnd {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        // TODO: a queue message holds at most QUEUE_MSG bytes. Send a first
        // chunk with the total length (4 little-endian bytes) and up to
        // QUEUE_MSG - 4 bytes of the message, then the rest in chunks of
        // QUEUE_MSG (`self.send_chunk`). An empty message is one chunk of
        // 4 bytes.
        let _ = self;
        let _ = msg;
        todo!("QueueEnd::send: the length, then chunks of at most QUEUE_MSG bytes")
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        // TODO: `self.recv_chunk()` the first chunk (into `self.chunk`),
        // read the length from its first 4 bytes, keep the rest; then
        // receive chunks until `buf` holds the whole length.
        let _ = self;
        let _ = buf;
        todo!("QueueEnd::recv: the first chunk, then the rest")
    }
}
// ANCHOR_END: queue

// ---------------------------------------------------------------------
// The shared-memory ring
// ---------------------------------------------------------------------

/// Each direction's ring: a header page, then RING_DATA bytes of data.
pub const RING_BYTES: usize = 4096 + RING_DATA;
/// A power of two, so that the 32-bit counters wrap in step with it.
pub const RING_DATA: usize = 256 << 10;

// The header's words, by byte offset; head and tail on cache lines of
// their own, so that the writer and the reader do not fight over one.
/// Bytes written so far (wrapping): only the writer stores it.
pub const HEAD: usize = 0;
/// Bytes read so far (wrapping): only the reader stores it.
pub const TAIL: usize = 64;
/// 1 while the reader sleeps (or is about to) waiting for `HEAD` to move.
pub const READER_SLEEPS: usize = 128;
/// 1 while the writer sleeps waiting for `TAIL` to move (a full ring).
pub const WRITER_SLEEPS: usize = 192;

// ANCHOR: wait_for_change
/// Sleeps until `word` no longer holds `seen`. The sleeper raises `flag`
/// before its last look, and the other side looks at `flag` after it
/// changes `word` (both SeqCst): so either the sleeper sees the change,
/// or the other side sees the flag and wakes it. No wake-up is lost, and
/// no system call is made when nobody sleeps.
pub fn wait_for_change(word: &AtomicU32, seen: u32, flag: &AtomicU32) -> Result<()> {
    // TODO: first `given::spin_while(word, seen)`: if the word changes
    // within a few microseconds, return at once, with no system call.
    // Otherwise raise `flag` (store 1, SeqCst), then while `word` still
    // holds `seen` (load SeqCst), `futex_wait(word, seen)`; lower `flag`
    // after. The flag tells the other side to call futex_wake.
    let _ = (word, seen, flag);
    todo!("wait_for_change: raise the flag, then futex_wait while nothing changed")
}

/// Publishes a new value of `word`, and wakes the other side if it sleeps.
pub fn publish(word: &AtomicU32, value: u32, flag: &AtomicU32) -> Result<()> {
    // TODO: store `value` in `word` (SeqCst), then, if `flag` is raised
    // (load SeqCst), `futex_wake(word)`. Store first, look second: the
    // other way round, a sleeper could be missed.
    let _ = (word, value, flag);
    todo!("publish: store, then wake a sleeper")
}
// ANCHOR_END: wait_for_change

/// One side of two rings: it reads ring `rx`, writes ring `tx`.
pub struct RingEnd {
    pub memory: SharedMemory,
    pub rx: usize,
    pub tx: usize,
    pub scratch: Vec<u8>,
}

impl RingEnd {
    pub fn new(memory: SharedMemory, rx: usize, tx: usize) -> RingEnd {
        RingEnd {
            memory,
            rx,
            tx,
            scratch: Vec::with_capacity(4 + SMALL),
        }
    }

    pub fn word(&self, ring: usize, offset: usize) -> &AtomicU32 {
        self.memory.word(ring * RING_BYTES + offset)
    }

    pub fn data(&self, ring: usize) -> *mut u8 {
        // SAFETY: ring 0 or 1, each RING_BYTES long, inside the mapping.
        unsafe { self.memory.as_ptr().add(ring * RING_BYTES + 4096) }
    }

    // ANCHOR: ring_write
    /// Copies all of `bytes` into ring `tx`, waiting for room whenever it
    /// is full. The data goes in before the head moves (the store in
    /// `publish` releases it), so the reader never sees bytes not yet
    /// written.
    pub fn write_bytes(&self, bytes: &[u8]) -> Result<()> {
        // TODO: while bytes remain: h = HEAD of ring `self.tx` (yours),
        // t = its TAIL (SeqCst); free = RING_DATA - h.wrapping_sub(t).
        // If nothing is free, `wait_for_change(tail, t, WRITER_SLEEPS word)`
        // and look again. Otherwise copy n = min(free, remaining) bytes to
        // `self.data(self.tx)` at h % RING_DATA (in two pieces if they wrap
        // past the end), then `publish` h + n in HEAD (READER_SLEEPS word).
        let _ = self;
        let _ = bytes;
        todo!("write_bytes: copy into the ring, waiting for room")
    }
    // ANCHOR_END: ring_write

    /// Copies the next `len` bytes of ring `rx` to `out`, waiting
    /// whenever the ring is empty.
    ///
    /// # Safety
    /// `out` must be valid for writing `len` bytes.
    pub unsafe fn read_bytes(&self, out: *mut u8, len: usize) -> Result<()> {
        // TODO: the mirror of write_bytes: while bytes are wanted, t = TAIL
        // of ring `self.rx` (yours), h = its HEAD (SeqCst); used =
        // h.wrapping_sub(t), never more than RING_DATA (fail if it is: the
        // counters come from another process, and copying more would read
        // past the ring). If 0, `wait_for_change(head, h, READER_SLEEPS
        // word)`. Otherwise copy min(used, len) bytes from t % RING_DATA
        // (two pieces if they wrap) to `out`, and `publish` the new tail
        // (WRITER_SLEEPS word) so that a writer waiting for room wakes.
        let _ = self;
        let _ = (out, len);
        todo!("read_bytes: copy out of the ring, waiting for data")
    }
}

// ANCHOR: ring
/// Messages through the rings are framed as on a byte stream: a 4-byte
/// length, then the bytes.
impl Transport for RingEnd {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        // TODO: frame the message as on a byte stream: 4 bytes of length,
        // then the bytes, with `self.write_bytes`. For a small message,
        // put both in `self.scratch` and write once: the reader wakes once.
        let _ = self;
        let _ = msg;
        todo!("RingEnd::send: the length, then the bytes")
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        // TODO: `read_bytes` the 4-byte length, check it against
        // MAX_MESSAGE, then read that many bytes into `buf` (clear it,
        // `reserve`, read into `buf.as_mut_ptr()`, then `set_len`).
        let _ = self;
        let _ = buf;
        todo!("RingEnd::recv: the length, then the bytes")
    }
}
// ANCHOR_END: ring

// ---------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------

// ANCHOR: round_trips
/// Sends `count` messages of `size` bytes, each time waiting for the
/// echo, and returns how long each round trip took. The other side runs
/// [`echo`].
pub fn round_trips(t: &mut dyn Transport, count: usize, size: usize) -> Result<Vec<Duration>> {
    // TODO: make a message of `size` bytes; `count` times: note
    // `Instant::now()`, send it, receive the echo, and push the elapsed
    // time. Check that each echo has `size` bytes. Return the samples.
    let _ = (t, count, size);
    todo!("round_trips: time each send and its echo")
}
// ANCHOR_END: round_trips

/// The other side of [`round_trips`]: sends back `count` messages.
pub fn echo(t: &mut dyn Transport, count: usize) -> Result<()> {
    let mut buf = Vec::new();
    for _ in 0..count {
        t.recv(&mut buf)?;
        t.send(&buf)?;
    }
    Ok(())
}

// ANCHOR: one_way
/// Sends `count` messages of `size` bytes one way, as fast as the other
/// side takes them, and returns the time until the other side (running
/// [`sink`]) acknowledged the last one.
pub fn one_way(t: &mut dyn Transport, count: usize, size: usize) -> Result<Duration> {
    // TODO: make a message of `size` bytes; start the clock, send it
    // `count` times, then receive the other side's "ok"; return the time
    // from the first send to the "ok".
    let _ = (t, count, size);
    todo!("one_way: time count messages and the ok")
}
// ANCHOR_END: one_way

/// The other side of [`one_way`]: takes `count` messages, then says "ok".
pub fn sink(t: &mut dyn Transport, count: usize) -> Result<()> {
    let mut buf = Vec::new();
    for i in 0..count {
        t.recv(&mut buf)
            .with_context(|| format!("receiving message {i}"))?;
    }
    t.send(b"ok")
}

/// The median and the 99th percentile of some samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    pub median: Duration,
    pub p99: Duration,
}

// ANCHOR: latency
impl Latency {
    /// Sorts the samples and picks the values below which half of them,
    /// and 99 in 100 of them, fall (nearest rank). The mean would hide
    /// the slow round trips, which are what users notice.
    pub fn of(samples: &mut [Duration]) -> Result<Latency> {
        // TODO: refuse no samples; sort them; the value of rank
        // ceil(p * len) (counting from 1) is the p-th quantile: take it for
        // p = 0.50 (the median) and p = 0.99.
        let _ = samples;
        todo!("Latency::of: sort, then the median and the 99th percentile")
    }
}
// ANCHOR_END: latency
