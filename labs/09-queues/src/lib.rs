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
//! Read chapter 9 of the book first; `cargo lab hint 9` helps when stuck.

use std::cell::UnsafeCell;
use std::ptr::NonNull;

use anyhow::{Context, Result};
use nix::mqueue::MQ_OFlag;
use nix::sys::mman::munmap;
// You will need some of these:
// use std::num::NonZeroUsize;
// use anyhow::{bail, ensure};
// use nix::errno::Errno;
// use nix::mqueue::{MqAttr, mq_open, mq_unlink};
// use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous};
// use nix::sys::stat::Mode;
// use given::{END, MESSAGE_SIZE, mq_limit, reply_queue_name, request_queue_name};

pub mod given;

pub use given::{Ending, Queue, Semaphore, join};

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
    // TODO:
    // 1. `MqAttr::new(0, capacity as _, message_size as _, 0)`.
    // 2. `mq_open(name, flags | O_CREAT | O_EXCL, S_IRUSR | S_IWUSR, Some(&attr))`,
    //    then `Queue::from_mqd(name, mqd)`.
    // 3. On EINVAL, read the limits with `mq_limit("msg_max")` and
    //    `mq_limit("msgsize_max")` and `bail!` with the limit that was
    //    broken: its name, its value and what was asked for.
    let _ = (name, capacity, message_size, flags);
    todo!("create_queue: mq_open with attributes, and explain EINVAL")
}
/// Sends `message` with priority 0 until the queue is full, and returns
/// how many went in. The queue must be open with `O_NONBLOCK`: a full
/// queue then says EAGAIN instead of blocking the sender.
pub fn fill(queue: &Queue, message: &[u8]) -> Result<usize> {
    // TODO: `queue.send(message, 0)` in a loop, counting; stop at
    // `Err(Errno::EAGAIN)` (full) and return the count; other errors go up.
    let _ = (queue, message);
    todo!("fill: send until EAGAIN")
}
/// Receives every message in the queue, until it is empty, with its
/// priority. The queue must be open with `O_NONBLOCK`. The kernel hands
/// out the highest priority first, and the oldest first within one
/// priority: keep that order.
pub fn drain(queue: &Queue) -> Result<Vec<(u32, Vec<u8>)>> {
    // TODO: `queue.receive()` in a loop, pushing `(priority, message)`;
    // stop at `Err(Errno::EAGAIN)` (empty). Keep the order received.
    let _ = queue;
    todo!("drain: receive until EAGAIN")
}

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
/// The string-reversing server: it owns the request queue.
pub struct Server {
    requests: Queue,
}

impl Server {
    /// Creates the request queue, replacing one a crashed server left.
    pub fn create() -> Result<Server> {
        // TODO:
        // 1. `let name = request_queue_name();`
        // 2. Remove a queue a crashed server may have left: `mq_unlink`,
        //    where ENOENT (there was none) is fine.
        // 3. `create_queue(&name, REQUEST_CAPACITY, MESSAGE_SIZE, O_RDONLY)`.
        todo!("Server::create: remove a stale queue, create the request queue")
    }
    /// Answers requests until one says [`END`]: each reply (the text
    /// reversed) goes to the queue of the client who asked. `log` sees
    /// each request. Returns how many requests were answered.
    pub fn serve(&self, mut log: impl FnMut(i32, &str)) -> Result<usize> {
        // TODO: loop:
        // 1. `self.requests.receive()`, then `parse_request` (skip a bad
        //    one with a message on stderr) and call `log(pid, &text)`.
        // 2. If the text is `END`, return how many requests were answered.
        // 3. Otherwise reverse the text (by chars) and send it on the queue
        //    of *this* client: `Queue::open(&reply_queue_name(pid),
        //    O_WRONLY | O_NONBLOCK)`. A client that is gone is reported on
        //    stderr, not fatal.
        let _ = (&self.requests, &mut log);
        todo!("Server::serve: answer each request on its client's queue")
    }
}
impl Drop for Server {
    /// Removes the request queue: without this, it stays in the kernel
    /// (and in /dev/mqueue) until the machine reboots.
    fn drop(&mut self) {
        // TODO: remove the request queue: `mq_unlink(self.requests.name.as_str())`
        // (report an error on stderr; a destructor cannot return it).
        todo!("Drop for Server: unlink the request queue")
    }
}
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
        // TODO:
        // 1. Create this client's reply queue first, with
        //    `create_queue(&reply_queue_name(pid), 1, MESSAGE_SIZE, O_RDONLY)`.
        // 2. Open the server's queue: `Queue::open(&request_queue_name(), O_WRONLY)`.
        todo!("Client::connect: create the reply queue, open the request queue")
    }

    /// Sends `text` to the server and waits for its reply.
    pub fn ask(&self, text: &str) -> Result<String> {
        // TODO: send `request(self.pid, text)` (at most MESSAGE_SIZE bytes)
        // on the request queue, then wait for the reply on `self.replies`.
        let _ = (self.pid, &self.requests, &self.replies, text);
        todo!("Client::ask: send the request, receive the reply")
    }

    /// Asks the server to stop (no reply comes).
    pub fn stop_server(&self) -> Result<()> {
        // TODO: send `request(self.pid, END)`.
        todo!("Client::stop_server: send end")
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // TODO: remove this client's reply queue with `mq_unlink`.
        todo!("Drop for Client: unlink the reply queue")
    }
}

/// The longest message a [`Ring`] slot holds.
pub const SLOT_BYTES: usize = 120;

/// The most slots a [`Ring`] can have.
pub const MAX_CAPACITY: usize = 64;
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

/// A bounded queue of messages in memory shared by a parent and the
/// children it forks after creating it: any number of producers and
/// consumers, each message delivered exactly once, and producers wait
/// while it is full.
pub struct Ring {
    shared: NonNull<Shared>,
}

impl Ring {
    /// Maps a new ring of `capacity` slots, shared with the children this
    /// process forks from now on.
    pub fn create(capacity: usize) -> Result<Ring> {
        // TODO:
        // 1. Check 1 <= capacity <= MAX_CAPACITY.
        // 2. `unsafe { mmap_anonymous(None, size_of::<Shared>(), READ | WRITE,
        //    MAP_SHARED) }`: one memory for this process and every child it
        //    forks later. It comes zeroed. Cast it: `.cast::<Shared>()`.
        // 3. Write `capacity` into it (through the raw pointer, before making
        //    a `Ring`), then `init` the semaphores: free = capacity, used = 0,
        //    head_lock = 1, tail_lock = 1.
        let _ = capacity;
        todo!("Ring::create: map the shared ring and initialise it")
    }

    fn shared(&self) -> &Shared {
        // SAFETY: the mapping lives as long as `self`.
        unsafe { self.shared.as_ref() }
    }
    /// Adds `message` at the head, waiting while the ring is full.
    pub fn push(&self, message: &[u8]) -> Result<()> {
        // TODO: at most SLOT_BYTES. Then, with `let s = self.shared();`:
        // wait for a free slot, take the head lock, write the message into
        // slot `head % capacity` (through `UnsafeCell::get`), move head,
        // release the lock, and post `used`.
        let _ = message;
        todo!("Ring::push: wait for a free slot, write it under the head lock")
    }
    /// Takes the message at the tail, waiting while the ring is empty.
    pub fn pop(&self) -> Result<Vec<u8>> {
        // TODO: the mirror of `push`: wait on `used`, take the tail lock,
        // copy slot `tail % capacity`, move tail, release, post `free`.
        todo!("Ring::pop: wait for a message, take it under the tail lock")
    }

    /// Messages in the ring now (for messages and tests only).
    pub fn len(&self) -> Result<usize> {
        Ok(self.shared().used.value()?.max(0) as usize)
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `create`, of that size; nothing
        // refers to it after `self` is gone.
        let _ = unsafe { munmap(self.shared.cast(), size_of::<Shared>()) };
    }
}
