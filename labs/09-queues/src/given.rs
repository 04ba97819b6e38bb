//! Given code shared by the programs in `src/bin/`. You do not need to edit it.

// What the programs of every lab share is written once, in the course's
// crate `lab-program` (crates/lab-program); this file keeps what is
// specific to this lab.
pub use lab_program::{Ending, args, hold, ipc_name, join, main_with, me, run_child};

use std::cell::UnsafeCell;
use std::io::Write;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, MqAttr, MqdT, mq_close, mq_getattr, mq_open, mq_receive, mq_send};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

/// The queue every client sends its requests to.
pub fn request_queue_name() -> String {
    ipc_name("requests")
}

/// The queue the server sends `client`'s replies to: one per client.
pub fn reply_queue_name(client: i32) -> String {
    ipc_name(&format!("reply-{client}"))
}

/// The request that stops the server.
pub const END: &str = "end";

/// The size of the messages of this lab's queues: room for a request.
pub const MESSAGE_SIZE: usize = 512;

/// An open POSIX message queue, closed when dropped.
#[derive(Debug)]
pub struct Queue {
    pub name: String,
    mqd: Option<MqdT>,
}

impl Queue {
    /// Opens the existing queue `name` with `flags` (O_RDONLY, O_WRONLY,
    /// O_RDWR, maybe O_NONBLOCK).
    pub fn open(name: &str, flags: MQ_OFlag) -> Result<Queue> {
        let mqd = mq_open(name, flags, Mode::empty(), None)
            .with_context(|| format!("mq_open({name})"))?;
        Ok(Queue::from_mqd(name, mqd))
    }

    /// Wraps a descriptor `mq_open` returned.
    pub fn from_mqd(name: &str, mqd: MqdT) -> Queue {
        Queue {
            name: name.to_string(),
            mqd: Some(mqd),
        }
    }

    /// The descriptor, for the calls of `nix::mqueue`.
    pub fn mqd(&self) -> &MqdT {
        self.mqd.as_ref().expect("an open queue")
    }

    /// Sends one message with `priority`, retrying after a signal.
    /// On a queue opened O_NONBLOCK, a full queue gives EAGAIN.
    pub fn send(&self, message: &[u8], priority: u32) -> nix::Result<()> {
        loop {
            match mq_send(self.mqd(), message, priority) {
                Err(Errno::EINTR) => continue,
                other => return other,
            }
        }
    }

    /// Receives the oldest message of the highest priority, and that
    /// priority, retrying after a signal. On a queue opened O_NONBLOCK,
    /// an empty queue gives EAGAIN.
    pub fn receive(&self) -> nix::Result<(Vec<u8>, u32)> {
        // The buffer must hold the queue's largest message, or EMSGSIZE.
        let size = mq_getattr(self.mqd())?.msgsize() as usize;
        let mut buf = vec![0u8; size];
        let mut priority = 0;
        loop {
            match mq_receive(self.mqd(), &mut buf, &mut priority) {
                Ok(n) => {
                    buf.truncate(n);
                    return Ok((buf, priority));
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The queue's attributes: flags, capacity, message size, messages in it.
    pub fn attributes(&self) -> Result<MqAttr> {
        mq_getattr(self.mqd()).with_context(|| format!("mq_getattr({})", self.name))
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        if let Some(mqd) = self.mqd.take() {
            let _ = mq_close(mqd);
        }
    }
}

/// A system limit of message queues, from `/proc/sys/fs/mqueue/NAME`:
/// `msg_max`, `msgsize_max` or `queues_max`.
pub fn mq_limit(name: &str) -> Result<i64> {
    let path = format!("/proc/sys/fs/mqueue/{name}");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    text.trim()
        .parse()
        .with_context(|| format!("{path} holds {text:?}, not a number"))
}

// ANCHOR: semaphore
/// A POSIX semaphore that works between processes: it must live in memory
/// that the processes share (a `MAP_SHARED` mapping), and be initialised
/// there once with [`Semaphore::init`] before any process uses it.
///
/// This is the one place where the lab calls libc directly: nix has no
/// binding for POSIX semaphores.
#[repr(transparent)]
pub struct Semaphore(UnsafeCell<libc::sem_t>);

// SAFETY: a sem_t is made to be used by many threads and processes at
// once; every operation on it goes through the sem_* calls.
unsafe impl Sync for Semaphore {}
// SAFETY: as above: a sem_t is not tied to the thread that made it.
unsafe impl Send for Semaphore {}

impl Semaphore {
    /// Initialises the semaphore in place, shared between processes,
    /// with `value` permits. Call once, before the processes fork.
    pub fn init(&self, value: u32) -> Result<()> {
        // SAFETY: the pointer comes from a live reference; pshared = 1
        // makes the semaphore usable from any process that maps it.
        let r = unsafe { libc::sem_init(self.0.get(), 1, value) };
        Errno::result(r).context("sem_init")?;
        Ok(())
    }

    /// Takes a permit, blocking while there is none (P, down).
    pub fn wait(&self) -> Result<()> {
        loop {
            // SAFETY: an initialised semaphore (see `init`).
            let r = unsafe { libc::sem_wait(self.0.get()) };
            match Errno::result(r) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e).context("sem_wait"),
            }
        }
    }

    /// Gives a permit back, waking one waiter if there is one (V, up).
    pub fn post(&self) -> Result<()> {
        // SAFETY: an initialised semaphore (see `init`).
        let r = unsafe { libc::sem_post(self.0.get()) };
        Errno::result(r).context("sem_post")?;
        Ok(())
    }
    // ANCHOR_END: semaphore

    /// The permits available now (for messages and tests only: it may
    /// change the moment after).
    pub fn value(&self) -> Result<i32> {
        let mut value = 0;
        // SAFETY: an initialised semaphore (see `init`).
        let r = unsafe { libc::sem_getvalue(self.0.get(), &mut value) };
        Errno::result(r).context("sem_getvalue")?;
        Ok(value)
    }
}

/// Starts a child process that runs `work` and exits with the status it
/// returns (101 if it panicked); the parent gets the child's pid.
pub fn spawn(work: impl FnOnce() -> i32) -> Result<Pid> {
    std::io::stdout().flush().context("flushing stdout")?;
    // SAFETY: the programs of this lab are single-threaded.
    match unsafe { nix::unistd::fork() }.context("fork")? {
        nix::unistd::ForkResult::Child => run_child(work),
        nix::unistd::ForkResult::Parent { child } => Ok(child),
    }
}
