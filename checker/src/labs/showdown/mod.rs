//! Lab 12 — the showdown: one interface, five mechanisms, measured.
//!
//! Correctness: the checker chooses the messages (sizes from 0 to past
//! 64 KiB and past the ring's size, random bytes), hands them to `relay`
//! in a file, and compares byte for byte what came back through each
//! transport (`echoed.bin`, round trips) and what the child received
//! (`streamed.bin`, one way and as fast as possible, so that buffers fill
//! up). While the relay holds at a gate, it looks in /proc at what the
//! parent really holds: pipes, FIFOs, a socket, queues or a shared mapping.
//!
//! The harness: the checker runs `bench` twice with small counts it
//! chooses, and checks that the CSV is consistent with itself, with the
//! arguments and with the time the runs took, and that the figures were
//! measured (two runs do not give the same latencies), and physically
//! possible: a blocking round trip is not far below the futex floor, a
//! throughput not far above the copy floor, and the per-message times add
//! up to no more than the run took. It makes no other assertion on speed.
//!
//! Here the declarations; `carries` and `harness` hold the scenarios.

mod carries;
mod harness;

use std::time::Duration;

use crate::labs::Lab;
use crate::scenario::{Fixture, Scenario, Variant};

use carries::{
    fifo_carries_every_byte, pipe_carries_every_byte, queue_carries_every_byte,
    ring_carries_every_byte, socket_carries_every_byte,
};
use harness::bench_is_measured;

pub static LAB: Lab = Lab {
    number: 12,
    slug: "showdown",
    title: "The showdown: five mechanisms, measured",
    student: &["src/lib.rs"],
    scenarios: &[
        Scenario {
            name: "pipe-carries-every-byte",
            points: 2,
            limit: Duration::from_secs(12),
            does: "runs `relay pipe` with about 30 messages of random bytes, from 0 bytes to past 64 KiB, echoed one at a time and then streamed one way",
            expects: "two pipes in the parent, and every message back exactly as sent, in order, nothing missing or extra",
            hints: &[
                "Start with `write_frame` and `read_frame`: a 4-byte length, then the bytes. Then `prepare` and `open` for Pipe.",
                "`read_exact`, not `read`: one read on a pipe returns at most what the pipe holds (64 KiB), so a large message arrives in several pieces.",
                "In `open`, the parent keeps the write end of `down` and the read end of `up`; the child the other two. Dropping the others closes them.",
            ],
            max_procs: 6,
            run: pipe_carries_every_byte,
        },
        Scenario {
            name: "fifo-carries-every-byte",
            points: 2,
            limit: Duration::from_secs(12),
            does: "runs `relay fifo` with random messages, echoed and then streamed",
            expects: "two FIFOs open in the parent, every message back as sent, and no FIFO left in the directory afterwards",
            hints: &[
                "`prepare` makes two FIFOs with `mkfifo` (paths from `unique_path`); `open` opens them after fork.",
                "Both sides open `down` first and `up` second: an open blocks until the other side opens the same FIFO, so opposite orders deadlock.",
                "Once the parent has both open, it removes both names: open FIFOs keep working, and nothing is left behind.",
            ],
            max_procs: 6,
            run: fifo_carries_every_byte,
        },
        Scenario {
            name: "socket-carries-every-byte",
            points: 2,
            limit: Duration::from_secs(12),
            does: "runs `relay socket` with random messages, echoed and then streamed",
            expects: "a Unix socket in the parent, and every message back as sent",
            hints: &[
                "`UnixStream::pair()` gives two connected sockets: one for each side. A stream socket has no message boundaries: frame it like a pipe.",
                "`try_clone` the socket to have one handle to read and one to write in a `StreamEnd`.",
            ],
            max_procs: 6,
            run: socket_carries_every_byte,
        },
        Scenario {
            name: "queue-carries-every-byte",
            points: 2,
            limit: Duration::from_secs(12),
            does: "runs `relay queue` with random messages, echoed and then streamed",
            expects: "two POSIX message queues in the parent, every message back as sent, and no queue left in /dev/mqueue",
            hints: &[
                "`new_queue`: `mq_open` with O_CREAT | O_EXCL | O_RDWR and an MqAttr of QUEUE_DEPTH messages of QUEUE_MSG bytes, then `mq_unlink` at once.",
                "A queue message holds at most QUEUE_MSG (8192) bytes: send a first chunk with the length and the start, then the rest in chunks.",
                "The receiver reads the length from the first chunk, then receives chunks until it has that many bytes.",
            ],
            max_procs: 6,
            run: queue_carries_every_byte,
        },
        Scenario {
            name: "ring-carries-every-byte",
            points: 3,
            limit: Duration::from_secs(12),
            does: "runs `relay ring` with random messages, some larger than the ring itself, echoed and then streamed, and watches the child's CPU time while it waits at the gate",
            expects: "a shared mapping in the parent, a child that sleeps while it waits, and every message back as sent, even when the ring fills up",
            hints: &[
                "The writer copies at most the free room (RING_DATA minus head - tail), publishes the new head, and waits for the tail to move when the ring is full.",
                "Wake-ups: the sleeper raises its flag, then looks once more before futex_wait; the other side stores first, then looks at the flag and calls futex_wake.",
                "Before sleeping, `given::spin_while(word, seen)` looks for a few microseconds; if the word changed, return with no system call. Never loop on the word without sleeping: an idle ring must not burn a CPU.",
                "A message larger than the ring goes through in pieces: the writer fills the ring, sleeps, and goes on as the reader empties it.",
            ],
            max_procs: 6,
            run: ring_carries_every_byte,
        },
        Scenario {
            name: "bench-is-measured",
            points: 3,
            limit: Duration::from_secs(60),
            does: "runs `bench` twice with message counts and sizes chosen at random, and reads its CSV files",
            expects: "a row per mechanism and the floor, the counts and sizes asked for, ratios that follow from the figures, and figures that were measured, not written in advance",
            hints: &[
                "`round_trips`: time each send and its echo with `Instant::now()` and `elapsed()`; `one_way`: time all the sends and the final ok.",
                "`Latency::of`: sort the samples and take the values at rank ceil(0.5 n) and ceil(0.99 n).",
                "Measured times differ from run to run: a harness that reports the same latencies twice did not measure them.",
            ],
            max_procs: 6,
            run: bench_is_measured,
        },
    ],
    fixtures: &[
        Fixture {
            name: "reads-once",
            caught_by: "pipe-carries-every-byte",
            says: "read_exact",
        },
        Fixture {
            name: "fifos-left-behind",
            caught_by: "fifo-carries-every-byte",
            says: "remove",
        },
        Fixture {
            name: "queue-without-chunks",
            caught_by: "queue-carries-every-byte",
            says: "chunks",
        },
        Fixture {
            name: "ring-ignores-full",
            caught_by: "ring-carries-every-byte",
            says: "wait for room",
        },
        Fixture {
            name: "ring-never-wakes",
            caught_by: "ring-carries-every-byte",
            says: "futex_wake",
        },
        Fixture {
            name: "ring-spins-forever",
            caught_by: "ring-carries-every-byte",
            says: "spins",
        },
        Fixture {
            name: "harness-invents-numbers",
            caught_by: "bench-is-measured",
            says: "not measured",
        },
        Fixture {
            name: "times-only-the-send",
            caught_by: "bench-is-measured",
            says: "futex floor",
        },
        Fixture {
            name: "one-way-per-message",
            caught_by: "bench-is-measured",
            says: "copy floor",
        },
        Fixture {
            name: "clock-started-once",
            caught_by: "bench-is-measured",
            says: "do not add up",
        },
        Fixture {
            name: "ring-read-ignores-wrap",
            caught_by: "ring-carries-every-byte",
            says: "where the ring wraps",
        },
    ],
    variants: &[Variant {
        name: "length-apart-select-nth",
        design: "the queue's length in a chunk of its own, streams in two writes per message, latency ranks by select_nth_unstable",
    }],
};

const PIPE_BUF: usize = 4096;
const PIPE_SIZE: usize = 65536;
const QUEUE_MSG: usize = 8192;
const RING_DATA: usize = 256 << 10;
