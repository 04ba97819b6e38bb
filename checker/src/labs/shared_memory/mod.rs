//! Lab 05 — shared memory: mmap before fork, and named segments.
//!
//! The checker looks at the memory itself. For the programs that fork, it
//! finds their mapping in /proc/PID/maps (is it shared?) and reads the
//! parent's copy of it through /proc/PID/mem while the parent is held at a
//! gate. For the named segment, it is the other program: it maps the
//! segment with shm_open and mmap, reads what the student's writer left
//! there, and writes, with data chosen at run time, what the student's
//! reader must find. To provoke the races of a message half written, it
//! holds the writer halfway through its copy (a gate in the given
//! `Mapping::write_data`) and starts a reader then.

mod forked;
mod mid_copy;
mod named;
mod segment;

use std::time::Duration;

use crate::labs::Lab;
use crate::scenario::{Fixture, Scenario, Variant};

use forked::{each_worker_owns_a_slot, lost_update_shown};
use mid_copy::{reader_meets_writer_mid_copy, stale_segment_at_the_name};
use named::{reader_waits_then_unlinks, writer_fills_the_segment, writer_then_reader};

pub static LAB: Lab = Lab {
    number: 5,
    slug: "shared-memory",
    title: "Shared memory: mmap and shm_open",
    student: &["src/lib.rs"],
    scenarios: &[
        Scenario {
            name: "each-worker-owns-a-slot",
            points: 3,
            limit: Duration::from_secs(10),
            does: "runs `averages` with random grades for 3 to 5 courses, then reads the parent's slots through /proc while it is held",
            expects: "a shared mapping whose slot i, in the parent's memory, holds course i's average, written by worker i",
            hints: &[
                "Map the memory before forking, with `mmap_anonymous(None, len, PROT_READ | PROT_WRITE, MAP_SHARED)`: children inherit the mapping, and MAP_SHARED makes it the same memory for all.",
                "In `course_averages`, worker i stores `average(grades).to_bits()` in `slots.words()[i]` and nothing else; the parent joins every worker, then loads each slot with `f64::from_bits`.",
                "No lock is needed: no two workers write the same slot, and the parent reads only after `join` (waitpid) has returned for every worker.",
            ],
            max_procs: 16,
            run: each_worker_owns_a_slot,
        },
        Scenario {
            name: "writer-fills-the-segment",
            points: 3,
            limit: Duration::from_secs(10),
            does: "runs `writer TEXT` with a random TEXT, then opens and maps the named segment itself",
            expects: "the segment to exist after the writer exits, with the magic number, ready = 1, len = the length of TEXT, then TEXT",
            hints: &[
                "`create_segment`: `shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0o600)`, then `ftruncate` to the size, then `mmap(..., MAP_SHARED, &fd, 0)`.",
                "`write_message`: store the magic and the length, copy the data after the header, and only then store READY in `ready`, with `Ordering::Release`.",
                "The writer must not remove the segment: the reader does, once it has read it.",
            ],
            max_procs: 8,
            run: writer_fills_the_segment,
        },
        Scenario {
            name: "reader-waits-then-unlinks",
            points: 3,
            limit: Duration::from_secs(10),
            does: "creates the segment itself, runs `reader`, and only once the reader has mapped it writes a random message and sets ready",
            expects: "the reader to wait for ready, print `read N bytes: TEXT`, and remove the segment",
            hints: &[
                "`open_segment`: `shm_open(name, O_RDONLY, Mode::empty())`, `fstat` for the size, then `mmap` all of it with PROT_READ and MAP_SHARED.",
                "`read_message`: loop until `ready.load(Ordering::Acquire) == READY` (sleep a millisecond between looks), then check the magic, read `len` and copy that many bytes.",
                "`receive` is the segment's last user: after reading, `shm_unlink` its name, or it stays in /dev/shm until the machine reboots.",
            ],
            max_procs: 8,
            run: reader_waits_then_unlinks,
        },
        Scenario {
            name: "writer-then-reader",
            points: 1,
            limit: Duration::from_secs(10),
            does: "runs `writer TEXT`, waits for it to exit, then runs `reader`",
            expects: "the segment to outlive the writer, the reader to print TEXT, and nothing left in /dev/shm afterwards",
            hints: &[
                "A named segment outlives the process that made it: the writer can exit before the reader even starts.",
                "If the reader finds nothing, check that both use `given::ipc_name(\"message\")` for the name.",
            ],
            max_procs: 8,
            run: writer_then_reader,
        },
        Scenario {
            name: "reader-meets-writer-mid-copy",
            points: 2,
            limit: Duration::from_secs(15),
            does: "runs `writer TEXT` with several pages of TEXT, holds it halfway through copying the data (in `Mapping::write_data`), looks at the segment, then starts `reader`",
            expects: "ready = 0 while the writer is held, the reader to sleep (not spin) until the writer is let go, then to print all of TEXT and remove the segment",
            hints: &[
                "The writer stores READY last: a reader that sees ready = 1 must find the whole message there.",
                "The reader waits for ready with a nap between looks, and reads `len` and the data only once it has seen READY.",
            ],
            max_procs: 8,
            run: reader_meets_writer_mid_copy,
        },
        Scenario {
            name: "stale-segment-at-the-name",
            points: 1,
            limit: Duration::from_secs(10),
            does: "leaves a whole old message (ready = 1) at the segment's name, as a writer that died before any reader came would, then runs `writer TEXT` and holds it halfway through its copy",
            expects: "the writer to refuse the leftover (an error, the old segment left as it was) or to replace it, never to write into it while its ready flag says 1",
            hints: &[
                "`create_segment` opens with O_CREAT | O_EXCL: a segment left by an earlier run makes it fail with EEXIST instead of being reused with stale contents.",
            ],
            max_procs: 8,
            run: stale_segment_at_the_name,
        },
        Scenario {
            name: "lost-update-shown",
            points: 2,
            limit: Duration::from_secs(15),
            does: "runs `lost-update 4 M` (4 workers, M random) and reads both counters in the parent's memory while it is held",
            expects: "the atomic counter to be exactly 4 x M, the racy one at most that, and both printed totals to be what the memory holds",
            hints: &[
                "This program is given: it only needs `Mapping::anonymous_shared` to map memory that the workers really share.",
                "If the atomic total is 0, each worker added to a copy of its own: the mapping is private, not shared.",
            ],
            max_procs: 12,
            run: lost_update_shown,
        },
    ],
    fixtures: &[
        Fixture {
            name: "private-mapping",
            caught_by: "each-worker-owns-a-slot",
            says: "MAP_PRIVATE",
        },
        Fixture {
            name: "all-write-slot-0",
            caught_by: "each-worker-owns-a-slot",
            says: "own slot",
        },
        Fixture {
            name: "no-ftruncate",
            caught_by: "writer-fills-the-segment",
            says: "ftruncate",
        },
        Fixture {
            name: "ready-never-set",
            caught_by: "writer-fills-the-segment",
            says: "Release",
        },
        Fixture {
            name: "writer-unlinks",
            caught_by: "writer-fills-the-segment",
            says: "leave it",
        },
        Fixture {
            name: "reader-ignores-ready",
            caught_by: "reader-waits-then-unlinks",
            says: "did not wait",
        },
        Fixture {
            name: "segment-never-unlinked",
            caught_by: "reader-waits-then-unlinks",
            says: "shm_unlink",
        },
        Fixture {
            name: "ready-before-data",
            caught_by: "reader-meets-writer-mid-copy",
            says: "before the data was all there",
        },
        Fixture {
            name: "reader-spins-on-ready",
            caught_by: "reader-waits-then-unlinks",
            says: "busy loop",
        },
        Fixture {
            name: "len-read-before-ready",
            caught_by: "reader-waits-then-unlinks",
            says: "before it saw ready = 1",
        },
        Fixture {
            name: "writer-reuses-stale-segment",
            caught_by: "stale-segment-at-the-name",
            says: "reused the object",
        },
    ],
    variants: &[
        Variant {
            name: "unlink-once-mapped",
            design: "the reader removes the name as soon as it has mapped the segment, before the message is ready",
        },
        Variant {
            name: "mmap-then-ftruncate",
            design: "the writer maps the new segment first and sizes it with ftruncate afterwards, before touching it",
        },
    ],
};
