//! Lab 09 — message queues.
//!
//! The checker is the other end of every queue: it is several clients of
//! the student's server (each with its own reply queue), the server of the
//! student's client (it answers with words of its own, so a client that
//! reverses the text itself cannot pass), the sender of a batch of mixed
//! priorities while the consumer is held at a gate, and the author of
//! every message that goes through the student's ring buffer, which it
//! checks as a set (each message once, checksum intact) from what the
//! consumers wrote, not from a count they printed. It opens the queues
//! itself (`mq_open`) to check their attributes and whether they were
//! removed, and reads /proc to see producers wait on a full ring.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mqueue::{
    MQ_OFlag, MqAttr, MqdT, mq_close, mq_getattr, mq_open, mq_receive, mq_send, mq_unlink,
};
use nix::sys::stat::Mode;
use rand::Rng;
use rand::seq::SliceRandom;

use crate::diagnose::{self, syscall_name};
use crate::labs::Lab;
use crate::pid::Pid;
use crate::process::{Exit, Proc};
use crate::procfs;
use crate::sandbox::checker_pid;
use crate::scenario::{Failure, Fixture, Outcome, Run, Scenario, Variant, field_num, fields};

mod attributes;
mod peers;
mod reversing;
mod ring;
mod unkind;

use attributes::*;
use peers::*;
use reversing::*;
use ring::*;
use unkind::*;

pub static LAB: Lab = Lab {
    number: 9,
    slug: "queues",
    title: "Message queues",
    student: &["src/lib.rs"],
    scenarios: &[
        Scenario {
            name: "reverse-server",
            points: 3,
            limit: Duration::from_secs(15),
            does: "starts `server`, then plays 3 to 5 clients at once, each with its own reply queue: every round, each client sends a random word, in a random order",
            expects: "each reply (the word reversed) in the reply queue of the client who asked, and nowhere else",
            hints: &[
                "A request says who asks: `PID TEXT`. The server replies on the queue `reply_queue_name(PID)`, which the client created before asking.",
                "Open the reply queue of the client named in *this* request, for every reply (and close it after). A queue kept from an earlier request belongs to another client.",
                "In `Server::serve`: receive, `parse_request`, stop at `end`, reverse the text by chars, `Queue::open(&reply_queue_name(pid), O_WRONLY | O_NONBLOCK)`, send.",
            ],
            max_procs: 4,
            run: reverse_server,
        },
        Scenario {
            name: "server-end-unlinks",
            points: 2,
            limit: Duration::from_secs(15),
            does: "leaves a stale request queue, as a crashed server would, starts `server`, asks one question, then sends `end`",
            expects: "the server to start anyway, answer, stop at `end` with status 0, and leave no queue behind",
            hints: &[
                "A message queue lives in the kernel until someone calls `mq_unlink`, even after every process closed it. `ls /dev/mqueue` shows them.",
                "`Server::create` removes a queue left by a crashed run (`mq_unlink`, ignoring ENOENT) before creating its own with O_CREAT | O_EXCL.",
                "`impl Drop for Server` calls `mq_unlink` on the request queue, so that it goes whichever way `main` ends.",
            ],
            max_procs: 4,
            run: server_end_unlinks,
        },
        Scenario {
            name: "reverse-client",
            points: 2,
            limit: Duration::from_secs(15),
            does: "plays the server: creates the request queue, starts `client`, types random lines, reads each request from the queue and answers it with a random word",
            expects: "each request as `PID TEXT` with the client's own pid, the answer printed as `reply: WORD`, and the client's reply queue removed when its input ends",
            hints: &[
                "`Client::connect` creates the client's own reply queue first (`create_queue(&reply_queue_name(pid), ...)`), then opens the server's request queue for writing.",
                "`ask` sends `request(pid, text)` and waits in `receive` on its own reply queue.",
                "`impl Drop for Client` removes the reply queue with `mq_unlink`: nobody else knows it exists.",
            ],
            max_procs: 4,
            run: reverse_client,
        },
        Scenario {
            name: "priorities-overtake",
            points: 2,
            limit: Duration::from_secs(10),
            does: "while `prio` is held at its gate, fills its queue with jobs of mixed priorities, then releases it",
            expects: "the jobs printed highest priority first, and in the order sent within one priority",
            hints: &[
                "`mq_receive` always hands out the oldest message of the highest priority: the kernel sorts, your code only keeps the order.",
                "`drain` receives until EAGAIN (the queue is open with O_NONBLOCK, so an empty queue does not block) and returns the messages in the order received.",
            ],
            max_procs: 4,
            run: priorities_overtake,
        },
        Scenario {
            name: "queue-attributes",
            points: 1,
            limit: Duration::from_secs(10),
            does: "runs `mqattr CAPACITY SIZE` with random values within the system's limits, and opens the queue itself while the program holds it full",
            expects: "the system limits from /proc/sys/fs/mqueue, a queue with exactly that capacity and message size, and `full after CAPACITY messages` (EAGAIN, no hang)",
            hints: &[
                "`MqAttr::new(0, capacity, message_size, 0)` and `mq_open(name, O_CREAT | O_EXCL | flags, mode, Some(&attr))`.",
                "`fill` sends until `mq_send` fails with EAGAIN: with O_NONBLOCK, a full queue says so instead of blocking.",
            ],
            max_procs: 4,
            run: queue_attributes,
        },
        Scenario {
            name: "limit-is-an-error",
            points: 1,
            limit: Duration::from_secs(10),
            does: "runs `mqattr` asking for more messages than msg_max allows, then for messages larger than msgsize_max",
            expects: "each time, a prompt exit with a non-zero status and an error that names the limit (msg_max, msgsize_max) and its value",
            hints: &[
                "The kernel answers EINVAL and nothing else. Read /proc/sys/fs/mqueue/msg_max and msgsize_max (`given::mq_limit`) to say which limit the request broke.",
                "Match `Err(Errno::EINVAL)` in `create_queue` and `bail!` with the limit's name, its value and the value asked for.",
            ],
            max_procs: 4,
            run: limit_is_an_error,
        },
        Scenario {
            name: "ring-every-message-once",
            points: 3,
            limit: Duration::from_secs(40),
            does: "three times: writes some 20 000 numbered, checksummed messages for 4 producers, runs `ring` with 2 or 3 consumers, and spreads the producers over the CPUs",
            expects: "every message in the consumers' files exactly once, intact, and the program to exit 0",
            hints: &[
                "Two semaphores count: `free` slots (producers take one before writing) and `used` slots (consumers take one before reading).",
                "Several producers: reading `head`, writing its slot and moving `head` must be one step that one producer at a time does. Guard it with a third semaphore (initial value 1); guard `tail` the same way for the consumers.",
                "Order in `push`: free.wait, head_lock.wait, write slot head % capacity, head += 1, head_lock.post, used.post. `pop` mirrors it.",
            ],
            max_procs: 10,
            run: ring_every_message_once,
        },
        Scenario {
            name: "ring-full-blocks-producers",
            points: 2,
            limit: Duration::from_secs(15),
            does: "runs `ring` with a tiny capacity and more messages than fit, keeps the consumers at the gate, and looks at the producers in /proc",
            expects: "every producer alive and blocked (in futex, a semaphore wait) while the ring is full; after the gate, every message delivered once",
            hints: &[
                "A full queue makes its producers wait; it never drops or overwrites. The `free` semaphore starts at the capacity, and `push` takes one permit before writing.",
                "`pop` gives the permit back (`free.post`) after reading: that is what wakes a waiting producer.",
            ],
            max_procs: 10,
            run: ring_full_blocks_producers,
        },
        Scenario {
            name: "client-vanishes",
            points: 2,
            limit: Duration::from_secs(15),
            does: "holds the server stopped while two clients send a request and vanish (one removes its reply queue, one dies with its reply queue full), lets it go on, then asks as a third client, then sends `end`",
            expects: "the third client answered, the server to stop at `end` with status 0, and no request queue left",
            hints: &[
                "A client can die between its request and its reply. Its reply queue is then gone (mq_open: ENOENT), or full of replies nobody reads. Report it on stderr and go on with the next request: never stop the server for one client.",
                "Open the reply queue with O_WRONLY | O_NONBLOCK: a full queue then says EAGAIN instead of making the server wait forever for a reader that is dead.",
            ],
            max_procs: 4,
            run: client_vanishes,
        },
        Scenario {
            name: "waiting-sleeps",
            points: 1,
            limit: Duration::from_secs(15),
            does: "watches the CPU time of the server while it waits for a request, then of the client while it waits for a reply the checker holds back",
            expects: "both to sleep while they wait (blocked in mq_receive), not to spin",
            hints: &[
                "mq_receive on a queue opened without O_NONBLOCK sleeps until a message comes. With O_NONBLOCK it returns EAGAIN at once, and a loop that tries again burns a whole CPU.",
                "Open the request queue and the reply queue without O_NONBLOCK for the ends that wait; keep O_NONBLOCK for `fill` and `drain`.",
            ],
            max_procs: 4,
            run: waiting_sleeps,
        },
        Scenario {
            name: "full-size-messages",
            points: 2,
            limit: Duration::from_secs(20),
            does: "sends the server requests of exactly MESSAGE_SIZE bytes with letters of two and three bytes, then as many requests back to back as the queue holds; then plays the server of `client` and answers with a reply of MESSAGE_SIZE bytes",
            expects: "every reply reversed by characters, in order, and the client to print the long reply whole",
            hints: &[
                "Both queues take messages up to MESSAGE_SIZE bytes: create the request queue and each reply queue with that message size.",
                "Reverse the characters (`text.chars().rev()`), not the bytes: `ñ` takes two bytes in UTF-8 and `ソ` three.",
            ],
            max_procs: 4,
            run: full_size_messages,
        },
    ],
    fixtures: &[
        Fixture {
            name: "shared-reply-queue",
            caught_by: "reverse-server",
            says: "wrong client",
        },
        Fixture {
            name: "server-never-unlinks",
            caught_by: "server-end-unlinks",
            says: "left behind",
        },
        Fixture {
            name: "client-never-unlinks",
            caught_by: "reverse-client",
            says: "left behind",
        },
        Fixture {
            name: "limit-not-explained",
            caught_by: "limit-is-an-error",
            says: "msg_max",
        },
        Fixture {
            name: "head-not-locked",
            caught_by: "ring-every-message-once",
            says: "same slot",
        },
        Fixture {
            name: "ring-overwrites",
            caught_by: "ring-full-blocks-producers",
            says: "overwrote",
        },
        Fixture {
            name: "dies-on-malformed-request",
            caught_by: "client-vanishes",
            says: "without its client's pid",
        },
        Fixture {
            name: "dies-on-gone-client",
            caught_by: "client-vanishes",
            says: "went away",
        },
        Fixture {
            name: "blocking-reply-send",
            caught_by: "client-vanishes",
            says: "without O_NONBLOCK",
        },
        Fixture {
            name: "server-polls-queue",
            caught_by: "waiting-sleeps",
            says: "busy loop",
        },
        Fixture {
            name: "reverses-bytes",
            caught_by: "full-size-messages",
            says: "byte by byte",
        },
        Fixture {
            name: "small-request-queue",
            caught_by: "full-size-messages",
            says: "message size",
        },
        Fixture {
            name: "small-reply-queue",
            caught_by: "full-size-messages",
            says: "message size",
        },
    ],
    variants: &[Variant {
        name: "timed-receive",
        design: "the server waits in mq_timedreceive (raw libc) with a one-second time-out, in a loop",
    }],
};

/// How long the checker waits for something that takes a correct program
/// a few milliseconds: generous, for a loaded machine.
const PATIENCE: Duration = Duration::from_secs(5);

/// The message size of the lab's queues (`given::MESSAGE_SIZE`).
const MESSAGE_SIZE: usize = 512;
