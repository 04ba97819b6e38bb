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

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, MqAttr, MqdT, mq_close, mq_open, mq_receive, mq_send, mq_unlink};
use nix::sys::stat::Mode;

pub mod given;

use given::{SharedMemory, futex_wait, futex_wake, spin_while};

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
    ensure!(msg.len() <= MAX_MESSAGE, "a message of {} bytes", msg.len());
    let header = (msg.len() as u32).to_le_bytes();
    if msg.len() <= SMALL {
        // One write, so that a small message costs one system call
        // and wakes the reader once.
        let mut frame = [0u8; 4 + SMALL];
        frame[..4].copy_from_slice(&header);
        frame[4..4 + msg.len()].copy_from_slice(msg);
        out.write_all(&frame[..4 + msg.len()])
            .context("writing a message")?;
    } else {
        out.write_all(&header)
            .context("writing a message's length")?;
        out.write_all(msg).context("writing a message")?;
    }
    Ok(())
}

/// Reads one message written by [`write_frame`]. A single `read` may
/// return less than asked (a pipe holds 64 KiB): `read_exact` loops until
/// the whole message is there.
pub fn read_frame(input: &mut impl Read, buf: &mut Vec<u8>) -> Result<()> {
    let mut header = [0u8; 4];
    input
        .read_exact(&mut header)
        .context("reading a message's length")?;
    let len = u32::from_le_bytes(header) as usize;
    ensure!(
        len <= MAX_MESSAGE,
        "a length of {len} bytes: the stream is out of step"
    );
    buf.clear();
    buf.resize(len, 0);
    input
        .read_exact(buf)
        .with_context(|| format!("reading a message of {len} bytes"))
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
    Ok(match mech {
        Mechanism::Pipe => Prepared::Pipe {
            down: nix::unistd::pipe().context("pipe")?,
            up: nix::unistd::pipe().context("pipe")?,
        },
        Mechanism::Fifo => {
            let (down, up) = (unique_path("down")?, unique_path("up")?);
            for path in [&down, &up] {
                nix::unistd::mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR)
                    .with_context(|| format!("mkfifo {}", path.display()))?;
            }
            Prepared::Fifo { down, up }
        }
        Mechanism::Socket => {
            let (parent, child) = UnixStream::pair().context("socketpair")?;
            Prepared::Socket { parent, child }
        }
        Mechanism::Queue => Prepared::Queue {
            down: new_queue("down")?,
            up: new_queue("up")?,
        },
        Mechanism::Ring => Prepared::Ring(SharedMemory::new(2 * RING_BYTES)?),
    })
}
// ANCHOR_END: prepare

/// A path in the current directory that no other run uses.
pub fn unique_path(what: &str) -> Result<PathBuf> {
    static MADE: AtomicU32 = AtomicU32::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::current_dir().context("the current directory")?;
    Ok(dir.join(format!("showdown-{}-{n}-{what}", given::me())))
}

// ANCHOR: open
impl Prepared {
    /// This side's end. Closes the other side's descriptors, so that each
    /// process holds only what it uses.
    pub fn open(self, side: Side) -> Result<Box<dyn Transport>> {
        let parent = side == Side::Parent;
        Ok(match self {
            Prepared::Pipe { down, up } => {
                // The parent writes down and reads up; the child the
                // reverse. The ends not kept are dropped (closed) here.
                let (rx, tx) = if parent {
                    (up.0, down.1)
                } else {
                    (down.0, up.1)
                };
                Box::new(StreamEnd {
                    rx: File::from(rx),
                    tx: File::from(tx),
                })
            }
            Prepared::Fifo { down, up } => {
                // Both sides open `down` first, then `up`: each open
                // blocks until the other side opens the same FIFO, so
                // opening in opposite orders would deadlock.
                let open = |path: &PathBuf, write: bool| {
                    std::fs::OpenOptions::new()
                        .read(!write)
                        .write(write)
                        .open(path)
                        .with_context(|| format!("opening {}", path.display()))
                };
                let end = if parent {
                    let tx = open(&down, true)?;
                    let rx = open(&up, false)?;
                    // Both are open at both ends now: the names can go.
                    for path in [&down, &up] {
                        std::fs::remove_file(path)
                            .with_context(|| format!("removing {}", path.display()))?;
                    }
                    StreamEnd { rx, tx }
                } else {
                    let rx = open(&down, false)?;
                    let tx = open(&up, true)?;
                    StreamEnd { rx, tx }
                };
                Box::new(end)
            }
            Prepared::Socket {
                parent: p,
                child: c,
            } => {
                let mine = if parent { p } else { c };
                let tx = mine.try_clone().context("duplicating the socket")?;
                Box::new(StreamEnd { rx: mine, tx })
            }
            Prepared::Queue { down, up } => {
                let (rx, tx) = if parent { (up, down) } else { (down, up) };
                Box::new(QueueEnd::new(rx, tx))
            }
            Prepared::Ring(memory) => {
                let (rx, tx) = if parent { (1, 0) } else { (0, 1) };
                Box::new(RingEnd::new(memory, rx, tx))
            }
        })
    }
}
// ANCHOR_END: open

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
    let name = given::ipc_name(&format!("{what}-{}", given::me()));
    let attr = MqAttr::new(0, QUEUE_DEPTH, QUEUE_MSG as i64, 0);
    let q = mq_open(
        name.as_str(),
        MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR,
        Mode::S_IRUSR | Mode::S_IWUSR,
        Some(&attr),
    )
    .with_context(|| format!("mq_open({name})"))?;
    let q = Mq(Some(q));
    mq_unlink(name.as_str()).with_context(|| format!("mq_unlink({name})"))?;
    Ok(q)
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
        ensure!(msg.len() <= MAX_MESSAGE, "a message of {} bytes", msg.len());
        let first = msg.len().min(QUEUE_MSG - 4);
        let mut head = Vec::with_capacity(4 + first);
        head.extend_from_slice(&(msg.len() as u32).to_le_bytes());
        head.extend_from_slice(&msg[..first]);
        self.send_chunk(&head)?;
        for chunk in msg[first..].chunks(QUEUE_MSG) {
            self.send_chunk(chunk)?;
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        let n = self.recv_chunk()?;
        ensure!(n >= 4, "a first chunk of {n} bytes, without a length");
        let len = u32::from_le_bytes(self.chunk[..4].try_into().expect("4 bytes")) as usize;
        ensure!(len <= MAX_MESSAGE, "a length of {len} bytes: out of step");
        buf.clear();
        buf.extend_from_slice(&self.chunk[4..n]);
        while buf.len() < len {
            let n = self.recv_chunk()?;
            buf.extend_from_slice(&self.chunk[..n]);
        }
        ensure!(
            buf.len() == len,
            "{} bytes arrived for a message of {len}",
            buf.len()
        );
        Ok(())
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
    // The other side is often busy on another core and about to publish:
    // look for a few microseconds before paying for a sleep and a wake-up.
    if spin_while(word, seen) {
        return Ok(());
    }
    flag.store(1, Ordering::SeqCst);
    while word.load(Ordering::SeqCst) == seen {
        futex_wait(word, seen)?;
    }
    flag.store(0, Ordering::SeqCst);
    Ok(())
}

/// Publishes a new value of `word`, and wakes the other side if it sleeps.
pub fn publish(word: &AtomicU32, value: u32, flag: &AtomicU32) -> Result<()> {
    word.store(value, Ordering::SeqCst);
    if flag.load(Ordering::SeqCst) != 0 {
        futex_wake(word)?;
    }
    Ok(())
}
// ANCHOR_END: wait_for_change

/// One side of two rings: it reads ring `rx`, writes ring `tx`.
pub struct RingEnd {
    pub memory: SharedMemory,
    pub rx: usize,
    pub tx: usize,
    pub scratch: Vec<u8>,
}

// ANCHOR: ring_write
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

    /// Copies all of `bytes` into ring `tx`, waiting for room whenever it
    /// is full. The data goes in before the head moves (the store in
    /// `publish` releases it), so the reader never sees bytes not yet
    /// written.
    pub fn write_bytes(&self, mut bytes: &[u8]) -> Result<()> {
        let (head, tail) = (self.word(self.tx, HEAD), self.word(self.tx, TAIL));
        let data = self.data(self.tx);
        while !bytes.is_empty() {
            let h = head.load(Ordering::Relaxed); // only we store it
            let t = tail.load(Ordering::SeqCst);
            // The tail comes from another process: check it before
            // trusting it with a copy.
            let unread = h.wrapping_sub(t) as usize;
            ensure!(
                unread <= RING_DATA,
                "{unread} bytes unread in a ring of {RING_DATA}: out of step"
            );
            let free = RING_DATA - unread;
            if free == 0 {
                wait_for_change(tail, t, self.word(self.tx, WRITER_SLEEPS))?;
                continue;
            }
            let n = free.min(bytes.len());
            let at = h as usize % RING_DATA;
            let first = n.min(RING_DATA - at);
            // SAFETY: [at, at + first) and [0, n - first) are inside the
            // data area, and the reader does not touch the free part.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), data.add(at), first);
                std::ptr::copy_nonoverlapping(bytes.as_ptr().add(first), data, n - first);
            }
            publish(
                head,
                h.wrapping_add(n as u32),
                self.word(self.tx, READER_SLEEPS),
            )?;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Copies the next `len` bytes of ring `rx` to `out`, waiting
    /// whenever the ring is empty.
    ///
    /// # Safety
    /// `out` must be valid for writing `len` bytes.
    pub unsafe fn read_bytes(&self, mut out: *mut u8, mut len: usize) -> Result<()> {
        let (head, tail) = (self.word(self.rx, HEAD), self.word(self.rx, TAIL));
        let data = self.data(self.rx);
        while len > 0 {
            let t = tail.load(Ordering::Relaxed); // only we store it
            let h = head.load(Ordering::SeqCst);
            let used = h.wrapping_sub(t) as usize;
            // More than the ring holds: the writer overwrote bytes not
            // read yet. Copying that much would read past the ring.
            ensure!(
                used <= RING_DATA,
                "{used} bytes unread in a ring of {RING_DATA}: out of step (did the writer wait for room?)"
            );
            if used == 0 {
                wait_for_change(head, h, self.word(self.rx, READER_SLEEPS))?;
                continue;
            }
            let n = used.min(len);
            let at = t as usize % RING_DATA;
            let first = n.min(RING_DATA - at);
            // SAFETY: the `used` bytes from `at` (wrapping) were written
            // and published by the writer, who does not touch them again
            // until the tail moves past them; `out` has room for `len`.
            unsafe {
                std::ptr::copy_nonoverlapping(data.add(at), out, first);
                std::ptr::copy_nonoverlapping(data, out.add(first), n - first);
                out = out.add(n);
            }
            publish(
                tail,
                t.wrapping_add(n as u32),
                self.word(self.rx, WRITER_SLEEPS),
            )?;
            len -= n;
        }
        Ok(())
    }
}
// ANCHOR_END: ring_write

// ANCHOR: ring
/// Messages through the rings are framed as on a byte stream: a 4-byte
/// length, then the bytes.
impl Transport for RingEnd {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        ensure!(msg.len() <= MAX_MESSAGE, "a message of {} bytes", msg.len());
        let header = (msg.len() as u32).to_le_bytes();
        if msg.len() <= SMALL {
            // Header and body in one go: the reader wakes once.
            let mut frame = std::mem::take(&mut self.scratch);
            frame.clear();
            frame.extend_from_slice(&header);
            frame.extend_from_slice(msg);
            let r = self.write_bytes(&frame);
            self.scratch = frame;
            r
        } else {
            self.write_bytes(&header)?;
            self.write_bytes(msg)
        }
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        let mut header = [0u8; 4];
        // SAFETY: the header has room for its 4 bytes.
        unsafe { self.read_bytes(header.as_mut_ptr(), 4) }?;
        let len = u32::from_le_bytes(header) as usize;
        ensure!(len <= MAX_MESSAGE, "a length of {len} bytes: out of step");
        buf.clear();
        buf.reserve(len);
        // Straight into the vector's spare room: no zero-filling first,
        // which would cost a third pass over the data.
        // SAFETY: `reserve` made room for `len` bytes, and `set_len` comes
        // only once all of them have been written.
        unsafe {
            self.read_bytes(buf.as_mut_ptr(), len)?;
            buf.set_len(len);
        }
        Ok(())
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
    let msg = vec![0xa5u8; size];
    let mut reply = Vec::with_capacity(size);
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        t.send(&msg)?;
        t.recv(&mut reply)?;
        samples.push(start.elapsed());
        ensure!(reply.len() == size, "an echo of {} bytes", reply.len());
    }
    Ok(samples)
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
    let msg = vec![0x3cu8; size];
    let mut ack = Vec::new();
    let start = Instant::now();
    for _ in 0..count {
        t.send(&msg)?;
    }
    t.recv(&mut ack)?;
    let took = start.elapsed();
    ensure!(ack == b"ok", "no acknowledgement");
    Ok(took)
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
        if samples.is_empty() {
            bail!("no samples to summarise");
        }
        samples.sort_unstable();
        let rank = |p: f64| {
            let r = (p * samples.len() as f64).ceil() as usize;
            samples[r.clamp(1, samples.len()) - 1]
        };
        Ok(Latency {
            median: rank(0.50),
            p99: rank(0.99),
        })
    }
}
// ANCHOR_END: latency
