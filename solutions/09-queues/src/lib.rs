//! Lab 09 — message queues.
//!
//! Two kinds of queue, and the programs that use them:
//!
//! - POSIX message queues, which the kernel keeps: [`create_queue`] opens
//!   one with chosen attributes and explains a refused limit in words;
//!   [`fill`] and [`drain`] show a full queue, an empty one and priorities;
//!   [`Server`] and [`Client`] are the string-reversing server of the
//!   tutorials this course grew from, one request queue and one reply queue per client.
//! - [`Ring`], a queue of our own: a ring buffer in shared memory guarded
//!   by semaphores, for many producers and many consumers.
//!
//! The programs in `src/bin/` are given: each one calls your functions, and
//! the checker runs them (`cargo lab check 9`). Edit this file only.

use std::cell::UnsafeCell;
use std::num::NonZeroUsize;
use std::ptr::NonNull;

use anyhow::{Context, Result, bail, ensure};
use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, MqAttr, mq_open, mq_unlink};
use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, munmap};
use nix::sys::stat::Mode;

pub mod given;

use given::{END, MESSAGE_SIZE, mq_limit, reply_queue_name, request_queue_name};
pub use given::{Ending, Queue, Semaphore, join};

// ANCHOR: create_queue
/// Creates the message queue `name`, which must not exist yet, holding
/// at most `capacity` messages of at most `message_size` bytes, and opens
/// it with `flags` (`O_RDONLY`, `O_WRONLY` or `O_RDWR`, maybe with
/// `O_NONBLOCK`). A refused attribute is explained with the system limit
/// it broke.
pub fn create_queue(
    name: &str,
    capacity: usize,
    message_size: usize,
    flags: MQ_OFlag,
) -> Result<Queue> {
    let attr = MqAttr::new(0, capacity as _, message_size as _, 0);
    let flags = flags | MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL;
    // 0600: only our own user may read or write it.
    let mode = Mode::S_IRUSR | Mode::S_IWUSR;
    match mq_open(name, flags, mode, Some(&attr)) {
        Ok(mqd) => Ok(Queue::from_mqd(name, mqd)),
        Err(Errno::EINVAL) => {
            // The kernel refuses, without saying which, an attribute above
            // the limits in /proc/sys/fs/mqueue (or a name without its
            // leading slash). Say which one it was.
            let msg_max = mq_limit("msg_max")?;
            let msgsize_max = mq_limit("msgsize_max")?;
            if capacity as i64 > msg_max || capacity == 0 {
                bail!(
                    "cannot create queue {name}: a capacity of {capacity} messages is \
                     not within 1..={msg_max}, the system limit msg_max \
                     (/proc/sys/fs/mqueue/msg_max)"
                );
            }
            if message_size as i64 > msgsize_max || message_size == 0 {
                bail!(
                    "cannot create queue {name}: a message size of {message_size} bytes \
                     is not within 1..={msgsize_max}, the system limit msgsize_max \
                     (/proc/sys/fs/mqueue/msgsize_max)"
                );
            }
            bail!("cannot create queue {name}: invalid name or attributes (EINVAL)")
        }
        Err(Errno::EMFILE | Errno::ENOSPC) => bail!(
            "cannot create queue {name}: too many queues (the system allows {}, \
             /proc/sys/fs/mqueue/queues_max)",
            mq_limit("queues_max")?
        ),
        Err(Errno::ENOMEM) => bail!(
            "cannot create queue {name}: {capacity} messages of {message_size} bytes \
             exceed this user's RLIMIT_MSGQUEUE (see `ulimit -q`)"
        ),
        Err(Errno::EEXIST) => bail!("cannot create queue {name}: it exists already"),
        Err(e) => Err(e).with_context(|| format!("mq_open({name})")),
    }
}
// ANCHOR_END: create_queue

// ANCHOR: fill
/// Sends `message` with priority 0 until the queue is full, and returns
/// how many went in. The queue must be open with `O_NONBLOCK`: a full
/// queue then says EAGAIN instead of blocking the sender.
pub fn fill(queue: &Queue, message: &[u8]) -> Result<usize> {
    let mut sent = 0;
    loop {
        match queue.send(message, 0) {
            Ok(()) => sent += 1,
            Err(Errno::EAGAIN) => return Ok(sent),
            Err(e) => return Err(e).with_context(|| format!("mq_send({})", queue.name)),
        }
    }
}
// ANCHOR_END: fill

// ANCHOR: drain
/// Receives every message in the queue, until it is empty, with its
/// priority. The queue must be open with `O_NONBLOCK`. The kernel hands
/// out the highest priority first, and the oldest first within one
/// priority: keep that order.
pub fn drain(queue: &Queue) -> Result<Vec<(u32, Vec<u8>)>> {
    let mut received = Vec::new();
    loop {
        match queue.receive() {
            Ok((message, priority)) => received.push((priority, message)),
            Err(Errno::EAGAIN) => return Ok(received),
            Err(e) => return Err(e).with_context(|| format!("mq_receive({})", queue.name)),
        }
    }
}
// ANCHOR_END: drain

/// How many requests the request queue holds before senders wait.
pub const REQUEST_CAPACITY: usize = 8;

/// A request as it travels: `PID TEXT`, the client's pid first, so that
/// the server knows which reply queue is the client's.
pub fn request(client: i32, text: &str) -> String {
    format!("{client} {text}")
}

/// Splits a request into the client's pid and its text.
pub fn parse_request(message: &[u8]) -> Result<(i32, String)> {
    let text = std::str::from_utf8(message).context("a request that is not UTF-8")?;
    let (pid, text) = text
        .split_once(' ')
        .with_context(|| format!("a request without its client's pid: {text:?}"))?;
    let pid = pid
        .parse()
        .with_context(|| format!("a request whose client pid is {pid:?}"))?;
    Ok((pid, text.to_string()))
}

// ANCHOR: server
/// The string-reversing server: it owns the request queue.
pub struct Server {
    requests: Queue,
}

impl Server {
    /// Creates the request queue, replacing one a crashed server left.
    pub fn create() -> Result<Server> {
        let name = request_queue_name();
        // A queue outlives the process that made it. If the last server
        // crashed, its queue (maybe with old requests in it) is still
        // there: remove it, so that we start clean.
        match mq_unlink(name.as_str()) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e).with_context(|| format!("mq_unlink({name})")),
        }
        let requests = create_queue(&name, REQUEST_CAPACITY, MESSAGE_SIZE, MQ_OFlag::O_RDONLY)?;
        Ok(Server { requests })
    }

    // ANCHOR: serve
    /// Answers requests until one says [`END`]: each reply (the text
    /// reversed) goes to the queue of the client who asked. `log` sees
    /// each request. Returns how many requests were answered.
    pub fn serve(&self, mut log: impl FnMut(i32, &str)) -> Result<usize> {
        let mut answered = 0;
        loop {
            let (message, _) = self
                .requests
                .receive()
                .with_context(|| format!("mq_receive({})", self.requests.name))?;
            let (client, text) = match parse_request(&message) {
                Ok(request) => request,
                Err(e) => {
                    // One bad request must not stop the server.
                    eprintln!("server: ignored: {e:#}");
                    continue;
                }
            };
            log(client, &text);
            if text == END {
                return Ok(answered);
            }
            let reply: String = text.chars().rev().collect();
            // Open the queue of *this* client, for this reply. A client
            // that is gone (its queue removed) costs us one reply, not
            // the server.
            let name = reply_queue_name(client);
            match Queue::open(&name, MQ_OFlag::O_WRONLY | MQ_OFlag::O_NONBLOCK) {
                Ok(replies) => match replies.send(reply.as_bytes(), 0) {
                    Ok(()) => answered += 1,
                    Err(e) => eprintln!("server: no reply to {client}: mq_send({name}): {e}"),
                },
                Err(e) => eprintln!("server: no reply to {client}: {e:#}"),
            }
        }
    }
    // ANCHOR_END: serve
}
// ANCHOR_END: server

// ANCHOR: server_drop
impl Drop for Server {
    /// Removes the request queue: without this, it stays in the kernel
    /// (and in /dev/mqueue) until the machine reboots.
    fn drop(&mut self) {
        if let Err(e) = mq_unlink(self.requests.name.as_str()) {
            eprintln!("server: mq_unlink({}): {e}", self.requests.name);
        }
    }
}
// ANCHOR_END: server_drop

// ANCHOR: client
/// A client of the server: it owns its reply queue.
pub struct Client {
    pid: i32,
    requests: Queue,
    replies: Queue,
}

impl Client {
    /// Creates this client's reply queue and opens the server's request
    /// queue (the server must be running).
    pub fn connect() -> Result<Client> {
        let pid = given::me();
        // Ours before the first request: a reply must have somewhere to go.
        let replies = create_queue(&reply_queue_name(pid), 1, MESSAGE_SIZE, MQ_OFlag::O_RDONLY)?;
        let requests = Queue::open(&request_queue_name(), MQ_OFlag::O_WRONLY)
            .context("is the server running?")?;
        Ok(Client {
            pid,
            requests,
            replies,
        })
    }

    /// Sends `text` to the server and waits for its reply.
    pub fn ask(&self, text: &str) -> Result<String> {
        let message = request(self.pid, text);
        ensure!(
            message.len() <= MESSAGE_SIZE,
            "a request is at most {MESSAGE_SIZE} bytes, this one has {}",
            message.len()
        );
        self.requests
            .send(message.as_bytes(), 0)
            .with_context(|| format!("mq_send({})", self.requests.name))?;
        let (reply, _) = self
            .replies
            .receive()
            .with_context(|| format!("mq_receive({})", self.replies.name))?;
        String::from_utf8(reply).context("a reply that is not UTF-8")
    }

    /// Asks the server to stop (no reply comes).
    pub fn stop_server(&self) -> Result<()> {
        self.requests
            .send(request(self.pid, END).as_bytes(), 0)
            .with_context(|| format!("mq_send({})", self.requests.name))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Err(e) = mq_unlink(self.replies.name.as_str()) {
            eprintln!("client: mq_unlink({}): {e}", self.replies.name);
        }
    }
}
// ANCHOR_END: client

/// The longest message a [`Ring`] slot holds.
pub const SLOT_BYTES: usize = 120;

/// The most slots a [`Ring`] can have.
pub const MAX_CAPACITY: usize = 64;

// ANCHOR: shared
/// One message in the ring.
#[repr(C)]
struct Slot {
    len: usize,
    bytes: [u8; SLOT_BYTES],
}

/// What the processes share: the slots, where to write next (`head`),
/// where to read next (`tail`), and four semaphores.
#[repr(C)]
struct Shared {
    /// Counts free slots: producers take one before writing.
    free: Semaphore,
    /// Counts full slots: consumers take one before reading.
    used: Semaphore,
    /// Lets one producer at a time move `head`.
    head_lock: Semaphore,
    /// Lets one consumer at a time move `tail`.
    tail_lock: Semaphore,
    capacity: usize,
    head: UnsafeCell<usize>,
    tail: UnsafeCell<usize>,
    slots: [UnsafeCell<Slot>; MAX_CAPACITY],
}
// ANCHOR_END: shared

/// A bounded queue of messages in memory shared by a parent and the
/// children it forks after creating it: any number of producers and
/// consumers, each message delivered exactly once, and producers wait
/// while it is full.
pub struct Ring {
    shared: NonNull<Shared>,
}

// ANCHOR: ring_create
impl Ring {
    /// Maps a new ring of `capacity` slots, shared with the children this
    /// process forks from now on.
    pub fn create(capacity: usize) -> Result<Ring> {
        ensure!(
            (1..=MAX_CAPACITY).contains(&capacity),
            "a ring has 1 to {MAX_CAPACITY} slots, not {capacity}"
        );
        let size = NonZeroUsize::new(size_of::<Shared>()).expect("a non-empty ring");
        // SAFETY: a new anonymous mapping, which aliases nothing. MAP_SHARED
        // makes it one memory for the parent and every child forked later
        // (MAP_PRIVATE would give each its own copy). It comes zeroed.
        let memory = unsafe {
            mmap_anonymous(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .context("mmap")?;
        let shared = memory.cast::<Shared>();
        // SAFETY: the mapping is as large as `Shared`, page-aligned, and
        // zeroed, which is a valid `Shared` apart from the semaphores,
        // initialised right below before anyone else can see them.
        unsafe { (&raw mut (*shared.as_ptr()).capacity).write(capacity) };
        let ring = Ring { shared };
        let s = ring.shared();
        s.free.init(capacity as u32)?;
        s.used.init(0)?;
        s.head_lock.init(1)?;
        s.tail_lock.init(1)?;
        Ok(ring)
    }

    fn shared(&self) -> &Shared {
        // SAFETY: the mapping lives as long as `self`.
        unsafe { self.shared.as_ref() }
    }

    // ANCHOR: push
    /// Adds `message` at the head, waiting while the ring is full.
    pub fn push(&self, message: &[u8]) -> Result<()> {
        ensure!(
            message.len() <= SLOT_BYTES,
            "a message is at most {SLOT_BYTES} bytes, this one has {}",
            message.len()
        );
        let s = self.shared();
        // Wait for a free slot: never overwrite a message nobody read.
        s.free.wait()?;
        // Several producers: only one at a time may read and move head,
        // or two take the same slot and one message is lost.
        s.head_lock.wait()?;
        // SAFETY: head and the slot it names are ours while we hold
        // head_lock and the free permit; no consumer reads this slot
        // before we post `used`.
        unsafe {
            let head = *s.head.get();
            let slot = &mut *s.slots[head % s.capacity].get();
            slot.len = message.len();
            slot.bytes[..message.len()].copy_from_slice(message);
            *s.head.get() = head + 1;
        }
        s.head_lock.post()?;
        // One more message to read: wake a consumer.
        s.used.post()
    }
    // ANCHOR_END: push

    // ANCHOR: pop
    /// Takes the message at the tail, waiting while the ring is empty.
    pub fn pop(&self) -> Result<Vec<u8>> {
        let s = self.shared();
        s.used.wait()?;
        s.tail_lock.wait()?;
        // SAFETY: tail and its slot are ours while we hold tail_lock and
        // the used permit; no producer writes this slot before we post
        // `free`.
        let message = unsafe {
            let tail = *s.tail.get();
            let slot = &*s.slots[tail % s.capacity].get();
            let message = slot.bytes[..slot.len].to_vec();
            *s.tail.get() = tail + 1;
            message
        };
        s.tail_lock.post()?;
        // The slot is free again: wake a producer.
        s.free.post()?;
        Ok(message)
    }
    // ANCHOR_END: pop

    /// Messages in the ring now (for messages and tests only).
    pub fn len(&self) -> Result<usize> {
        Ok(self.shared().used.value()?.max(0) as usize)
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}
// ANCHOR_END: ring_create

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `create`, of that size; nothing
        // refers to it after `self` is gone.
        let _ = unsafe { munmap(self.shared.cast(), size_of::<Shared>()) };
    }
}
