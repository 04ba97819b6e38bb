//! Lab 05 — shared memory: mmap before fork, and named segments.
//!
//! The checker looks at the memory itself. For the programs that fork, it
//! finds their mapping in /proc/PID/maps (is it shared?) and reads the
//! parent's copy of it through /proc/PID/mem while the parent is held at a
//! gate. For the named segment, it is the other program: it maps the
//! segment with shm_open and mmap, reads what the student's writer left
//! there, and writes, with data chosen at run time, what the student's
//! reader must find.

use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap, shm_open};
use nix::sys::signal::Signal;
use nix::sys::stat::{Mode, fstat};
use nix::unistd::ftruncate;
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::labs::Lab;
use crate::process::{Exit, Proc};
use crate::procfs;
use crate::scenario::{Failure, Fixture, Outcome, Run, Scenario, field_num, quote_lines};

pub static LAB: Lab = Lab {
    number: 5,
    slug: "shared-memory",
    title: "Shared memory: mmap and shm_open",
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
    ],
    variants: &[],
};

// The segment layout, as the chapter and the lab's `Header` document it.
const MAGIC: u64 = u64::from_le_bytes(*b"LAB05SHM");
const HEADER_LEN: usize = 24;
const READY: u64 = 1;

/// A named segment the checker maps itself; unmapped on drop (the sandbox
/// removes the name).
struct Segment {
    ptr: NonNull<c_void>,
    len: usize,
}

impl Segment {
    /// Creates `name` with `size` zero bytes, mapped for reading and writing.
    fn create(name: &str, size: usize) -> Result<Segment, Failure> {
        let fd = shm_open(
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
            Mode::S_IRUSR | Mode::S_IWUSR,
        )
        .map_err(|e| Failure::internal(format!("shm_open({name}): {e}")))?;
        ftruncate(&fd, size as i64)
            .map_err(|e| Failure::internal(format!("ftruncate({name}): {e}")))?;
        Segment::map(&fd, size, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE)
            .map_err(|e| Failure::internal(format!("mmap({name}): {e}")))
    }

    /// Opens the existing segment `name` read-only: `None` if there is none.
    fn open(name: &str) -> Result<Option<Segment>, Failure> {
        let fd = match shm_open(name, OFlag::O_RDONLY, Mode::empty()) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(Failure::internal(format!("shm_open({name}): {e}"))),
        };
        let size = fstat(&fd)
            .map_err(|e| Failure::internal(format!("fstat({name}): {e}")))?
            .st_size as usize;
        if size == 0 {
            return Ok(Some(Segment {
                ptr: NonNull::dangling(),
                len: 0,
            }));
        }
        Segment::map(&fd, size, ProtFlags::PROT_READ)
            .map(Some)
            .map_err(|e| Failure::internal(format!("mmap({name}): {e}")))
    }

    fn map(fd: &OwnedFd, size: usize, prot: ProtFlags) -> nix::Result<Segment> {
        let len = NonZeroUsize::new(size).ok_or(nix::errno::Errno::EINVAL)?;
        // SAFETY: a new mapping at an address the kernel picks.
        let ptr = unsafe { mmap(None, len, prot, MapFlags::MAP_SHARED, fd, 0) }?;
        Ok(Segment { ptr, len: size })
    }

    /// Header word `i` (0 magic, 1 ready, 2 len).
    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(self.len >= HEADER_LEN && i < 3);
        // SAFETY: page-aligned, inside the mapping, any bits are a u64.
        unsafe { &*self.ptr.as_ptr().cast::<AtomicU64>().add(i) }
    }

    /// The bytes after the header.
    fn data(&self) -> Vec<u8> {
        let n = self.len.saturating_sub(HEADER_LEN);
        let mut out = vec![0u8; n];
        if n > 0 {
            // SAFETY: `n` bytes follow the header inside the mapping.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    self.ptr.as_ptr().cast::<u8>().add(HEADER_LEN),
                    out.as_mut_ptr(),
                    n,
                )
            };
        }
        out
    }

    fn write_data(&self, data: &[u8]) {
        assert!(HEADER_LEN + data.len() <= self.len);
        // SAFETY: checked to fit inside the mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.ptr.as_ptr().cast::<u8>().add(HEADER_LEN),
                data.len(),
            )
        };
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: ours, and nothing borrows it any more.
            let _ = unsafe { munmap(self.ptr, self.len) };
        }
    }
}

/// The segment's name for this scenario, as `given::ipc_name("message")`
/// makes it, and where it shows up in /dev/shm.
fn segment_name(run: &Run) -> (String, PathBuf) {
    let name = format!("{}message", run.sandbox.ipc_prefix);
    let path = PathBuf::from(format!("/dev/shm/{}", name.trim_start_matches('/')));
    (name, path)
}

fn random_text(run: &mut Run) -> String {
    let len = run.rng.random_range(300..3000);
    (&mut run.rng)
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// The address in `parent pid=P slots at 0xADDR`.
fn address_in(line: &str) -> Option<u64> {
    let word = line.split_whitespace().last()?;
    u64::from_str_radix(word.strip_prefix("0x")?, 16).ok()
}

/// The mapping of `pid` that holds `len` bytes at `addr` must be shared.
fn expect_shared(pid: i32, addr: u64, len: u64, what: &str) -> Outcome {
    let maps = procfs::mappings(pid);
    let Some(m) = maps.iter().find(|m| m.contains(addr, len)) else {
        return Err(Failure::wrong(
            format!("{len} bytes of {what} mapped at {addr:#x} in process {pid}"),
            format!("/proc/{pid}/maps has no mapping there"),
        ));
    };
    if !m.is_shared() {
        return Err(Failure::wrong(
            format!("{what} at {addr:#x} to be a shared mapping (`rw-s` in /proc/{pid}/maps)"),
            format!("it is private: `{}`", m.perms),
        )
        .because(
            "the memory was mapped with MAP_PRIVATE: after fork each worker writes to a copy-on-write \
             copy of its own and the parent never sees it. Map it with MAP_SHARED",
        ));
    }
    Ok(())
}

/// The 8-byte words at `addr` in the memory of `pid`; `None` where the
/// system does not let the checker read it (then it trusts the output).
fn peek_words(pid: i32, addr: u64, n: usize) -> Option<Vec<u64>> {
    let bytes = procfs::read_memory(pid, addr, n * 8).ok()?;
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
            .collect(),
    )
}

fn texts(lines: Vec<crate::process::Line>) -> Vec<String> {
    lines.into_iter().map(|l| l.text).collect()
}

fn average(grades: &[u32]) -> f64 {
    let sum: u64 = grades.iter().map(|&g| u64::from(g)).sum();
    sum as f64 / grades.len() as f64
}

fn each_worker_owns_a_slot(run: &mut Run) -> Outcome {
    let n: usize = run.rng.random_range(3..=5);
    // Random grades from 1 to 7, as in the seed, with averages that differ,
    // so that a value in the wrong slot tells whose it is.
    let (courses, wanted) = loop {
        let courses: Vec<Vec<u32>> = (0..n)
            .map(|_| {
                let len = run.rng.random_range(20..=40);
                (0..len).map(|_| run.rng.random_range(1..=7)).collect()
            })
            .collect();
        let wanted: Vec<f64> = courses.iter().map(|c| average(c)).collect();
        let mut bits: Vec<u64> = wanted.iter().map(|a| a.to_bits()).collect();
        bits.sort_unstable();
        bits.dedup();
        if bits.len() == n {
            break (courses, wanted);
        }
    };
    let args: Vec<String> = courses
        .iter()
        .map(|c| c.iter().map(u32::to_string).collect::<Vec<_>>().join(","))
        .collect();
    let mut p = run.spawn("averages", &args)?;
    let program = p.pid;

    let first = run
        .line(&mut p, "a first line `parent pid=P slots at 0xADDRESS`")?
        .text;
    let Some(addr) = address_in(&first).filter(|_| first.starts_with("parent ")) else {
        return Err(Failure::wrong(
            "a first line `parent pid=P slots at 0xADDRESS`",
            format!("`{first}`"),
        ));
    };

    let mut workers: Vec<(usize, i64)> = Vec::new();
    let mut printed: Vec<Option<String>> = vec![None; n];
    for _ in 0..2 * n {
        let line = run
            .line(
                &mut p,
                &format!(
                    "{n} lines `worker I pid=W wrote slot I`, then {n} lines `course I average A`"
                ),
            )?
            .text;
        let words: Vec<&str> = line.split_whitespace().collect();
        let index = words.get(1).and_then(|w| w.parse::<usize>().ok());
        match (words.first(), index) {
            (Some(&"worker"), Some(i)) if i < n => {
                let pid = field_num(&line, "pid").unwrap_or(-1);
                workers.push((i, pid));
            }
            (Some(&"course"), Some(i)) if i < n => printed[i] = words.get(3).map(|w| w.to_string()),
            _ => {
                return Err(Failure::wrong(
                    format!(
                        "lines `worker I pid=W wrote slot I` and `course I average A`, I from 0 to {}",
                        n - 1
                    ),
                    format!("`{line}`"),
                ));
            }
        }
    }

    let mut pids: Vec<i64> = workers.iter().map(|w| w.1).collect();
    pids.sort_unstable();
    pids.dedup();
    if workers.len() != n || pids.len() != n || pids.contains(&(program as i64)) || pids[0] <= 0 {
        return Err(Failure::wrong(
            format!("{n} workers, each a process of its own (not the parent, pid {program})"),
            format!("workers {workers:?} (index, pid)"),
        ));
    }

    // The parent is now held after printing the averages: look at its memory.
    expect_shared(program, addr, 8 * n as u64, "the slots")?;
    if let Some(slots) = peek_words(program, addr, n) {
        for (i, &got) in slots.iter().enumerate() {
            if got == wanted[i].to_bits() {
                continue;
            }
            let got_f = f64::from_bits(got);
            let whose = wanted.iter().position(|w| w.to_bits() == got);
            let failure = Failure::wrong(
                format!(
                    "slot {i}, in the parent's memory, to hold course {i}'s average {:.3}",
                    wanted[i]
                ),
                format!(
                    "it holds {}",
                    if got == 0 {
                        "0 (nothing was written there)".to_string()
                    } else {
                        format!("{got_f:.3}")
                    }
                ),
            );
            return Err(match whose {
                Some(k) => failure.because(format!(
                    "that is course {k}'s average: the worker for course {k} wrote slot {i}. Each worker must write only its own slot: slot i for course i"
                )),
                None if got == 0 => failure.because(format!(
                    "no write to slot {i} reached the parent: worker {i} must store its average in its own slot, words()[{i}], of the shared mapping"
                )),
                None => failure.because("each worker must store `average(grades).to_bits()` in its own slot"),
            });
        }
    }
    for (i, want) in wanted.iter().enumerate() {
        let want_text = format!("{want:.3}");
        if printed[i].as_deref() != Some(want_text.as_str()) {
            return Err(Failure::wrong(
                format!("`course {i} average {want_text}`"),
                format!("average {}", printed[i].as_deref().unwrap_or("missing")),
            )
            .because("course_averages must return what the parent reads in the slots, in the order of the courses"));
        }
    }
    p.close_stdin();
    run.expect_success(&mut p)
}

/// Waits for `p` to exit and explains a bad ending.
fn expect_clean_exit(run: &Run, p: &mut Proc, lines: &[String]) -> Outcome {
    match run.wait(p)? {
        Exit::Code(0) => Ok(()),
        Exit::Signal(Signal::SIGBUS) => Err(Failure::wrong(
            format!("{} to exit with status 0", p.name),
            "it was killed by SIGBUS",
        )
        .because(
            "it touched a page of the mapping beyond the end of the segment. A new segment has 0 bytes: \
             ftruncate it to its size before writing through the mapping",
        )),
        other => Err(Failure::wrong(
            format!("{} to exit with status 0", p.name),
            format!("it ended with {other} after printing {}", quote_lines(lines)),
        )),
    }
}

fn writer_fills_the_segment(run: &mut Run) -> Outcome {
    let text = random_text(run);
    let (name, path) = segment_name(run);
    let mut p = run.spawn("writer", std::slice::from_ref(&text))?;
    let lines = texts(run.rest(&mut p, "the writer to finish")?);
    expect_clean_exit(run, &mut p, &lines)?;
    check_segment(run, &name, &path, &text)?;
    Ok(())
}

/// Reads the segment the writer left and compares it with `text`.
fn check_segment(run: &Run, name: &str, path: &PathBuf, text: &str) -> Outcome {
    let objects = run.sandbox.ipc_objects();
    if !objects.contains(path) {
        let others: Vec<String> = objects.iter().map(|o| o.display().to_string()).collect();
        return Err(Failure::wrong(
            format!("the segment {name} ({}) to exist after the writer exited", path.display()),
            if others.is_empty() {
                "there is no segment".to_string()
            } else {
                format!("only {} exist", others.join(", "))
            },
        )
        .because(
            "the writer must create the segment with shm_open (name from given::ipc_name) and leave it: the reader removes it",
        ));
    }
    let Some(seg) = Segment::open(name)? else {
        return Err(Failure::internal(format!("{name} vanished")));
    };
    let want_len = HEADER_LEN + text.len();
    if seg.len < want_len {
        return Err(Failure::wrong(
            format!("the segment to be at least {want_len} bytes (a {HEADER_LEN}-byte header, then {} bytes of text)", text.len()),
            format!("it is {} bytes", seg.len),
        )
        .because("ftruncate the segment to HEADER_LEN + the data's length before mapping it"));
    }
    let (magic, ready, len) = (
        seg.word(0).load(Ordering::Acquire),
        seg.word(1).load(Ordering::Acquire),
        seg.word(2).load(Ordering::Acquire),
    );
    let data = seg.data();
    if magic != MAGIC {
        let all_zero = magic == 0 && ready == 0 && len == 0 && data.iter().all(|&b| b == 0);
        let failure = Failure::wrong(
            format!("the segment to start with the magic number {MAGIC:#x}"),
            format!("it starts with {magic:#x}"),
        );
        return Err(if all_zero {
            failure.because(
                "the segment is all zeros: nothing the writer wrote reached it. Write through a MAP_SHARED \
                 mapping of the segment's descriptor (a MAP_PRIVATE mapping keeps its writes to itself)",
            )
        } else {
            failure
        });
    }
    if len != text.len() as u64 {
        return Err(Failure::wrong(
            format!(
                "len (offset 16) to be {}, the length of the text",
                text.len()
            ),
            format!("it is {len}"),
        ));
    }
    if let Some(at) = (0..text.len()).find(|&i| data[i] != text.as_bytes()[i]) {
        let end = (at + 16).min(text.len());
        return Err(Failure::wrong(
            format!("the text from offset {HEADER_LEN}, as given to the writer"),
            format!(
                "it differs at byte {at} of the text: `{}` instead of `{}`",
                String::from_utf8_lossy(&data[at..end]),
                &text[at..end]
            ),
        ));
    }
    if ready != READY {
        return Err(Failure::wrong(
            format!("ready (offset 8) to be {READY} once the writer is done"),
            format!("it is {ready}"),
        )
        .because("the writer must store READY in `ready` last, with Ordering::Release, after the magic, the length and the data"));
    }
    Ok(())
}

fn reader_waits_then_unlinks(run: &mut Run) -> Outcome {
    let text = random_text(run);
    let (name, path) = segment_name(run);
    let spare = run.rng.random_range(0..500);
    let seg = Segment::create(&name, HEADER_LEN + text.len() + spare)?;
    let mut p = run.spawn("reader", &[])?;
    let reader = p.pid;
    let bare = name.trim_start_matches('/').to_string();
    let ended = |pid: i32| procfs::stat(pid).is_none_or(|s| s.is_zombie());

    // The gate: write nothing until the reader has mapped the segment.
    let mapped = run.poll(Duration::from_secs(8), || {
        if procfs::mappings(reader)
            .iter()
            .any(|m| m.path.contains(&bare))
        {
            Some(true)
        } else if ended(reader) {
            Some(false)
        } else {
            None
        }
    });
    let too_early = |run: &Run, p: &mut Proc| -> Failure {
        let lines = run
            .rest(p, "the reader to finish")
            .map(texts)
            .unwrap_or_default();
        Failure::wrong(
            "the reader to wait until the checker sets ready = 1",
            format!(
                "it ended before the checker wrote anything, after printing {}",
                quote_lines(&lines)
            ),
        )
        .because(
            "the reader did not wait for the ready flag: loop until `ready.load(Ordering::Acquire) == READY` \
             before reading the length and the data",
        )
    };
    match mapped {
        Some(true) => {}
        Some(false) => return Err(too_early(run, &mut p)),
        None => return Err(run.timed_out(&format!("the reader to map {name}"))),
    }
    // Leave a reader that does not wait the time to read the empty segment.
    std::thread::sleep(Duration::from_millis(300));
    if ended(reader) {
        return Err(too_early(run, &mut p));
    }

    seg.word(0).store(MAGIC, Ordering::Relaxed);
    seg.word(2).store(text.len() as u64, Ordering::Relaxed);
    seg.write_data(text.as_bytes());
    seg.word(1).store(READY, Ordering::Release);

    let lines = texts(run.rest(&mut p, "the reader's line `read N bytes: TEXT`")?);
    expect_clean_exit(run, &mut p, &lines)?;
    let wanted = format!("read {} bytes: {text}", text.len());
    if !lines.contains(&wanted) {
        return Err(Failure::wrong(
            format!(
                "`read {} bytes: ...` with the text the checker wrote",
                text.len()
            ),
            format!("it printed {}", quote_lines(&lines)),
        ));
    }
    expect_no_leftover(run, &path)
}

/// Nothing may be left in /dev/shm once the reader is done.
fn expect_no_leftover(run: &Run, path: &PathBuf) -> Outcome {
    let left = run.sandbox.ipc_objects();
    if left.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = left.iter().map(|o| o.display().to_string()).collect();
    let failure = Failure::wrong(
        "no segment left in /dev/shm once the reader has exited",
        format!("{} is still there", names.join(", ")),
    );
    Err(if left.contains(path) {
        failure.because(
            "the reader never removed the segment: call shm_unlink once the message is read. A named segment stays, \
             memory and all, until it is unlinked (or the machine reboots), even when no process maps it",
        )
    } else {
        failure
    })
}

fn writer_then_reader(run: &mut Run) -> Outcome {
    let text = random_text(run);
    let (name, path) = segment_name(run);
    let mut w = run.spawn("writer", std::slice::from_ref(&text))?;
    let lines = texts(run.rest(&mut w, "the writer to finish")?);
    expect_clean_exit(run, &mut w, &lines)?;
    if !run.sandbox.ipc_objects().contains(&path) {
        return Err(Failure::wrong(
            format!("{name} to exist after the writer exited"),
            "it does not",
        )
        .because(
            "the segment must outlive the writer: the writer does not unlink it, the reader does",
        ));
    }
    let mut r = run.spawn("reader", &[])?;
    let lines = texts(run.rest(&mut r, "the reader's line `read N bytes: TEXT`")?);
    expect_clean_exit(run, &mut r, &lines)?;
    let wanted = format!("read {} bytes: {text}", text.len());
    if !lines.contains(&wanted) {
        return Err(Failure::wrong(
            format!("`read {} bytes: ...` with the writer's text", text.len()),
            format!("it printed {}", quote_lines(&lines)),
        ));
    }
    expect_no_leftover(run, &path)
}

fn lost_update_shown(run: &mut Run) -> Outcome {
    let n: u64 = 4;
    let m: u64 = run.rng.random_range(200_000..400_000);
    let mut p = run.spawn("lost-update", &[n.to_string(), m.to_string()])?;
    let program = p.pid;
    let first = run
        .line(&mut p, "a first line `parent pid=P counters at 0xADDRESS`")?
        .text;
    let Some(addr) = address_in(&first).filter(|_| first.starts_with("parent ")) else {
        return Err(Failure::wrong(
            "a first line `parent pid=P counters at 0xADDRESS`",
            format!("`{first}`"),
        ));
    };
    let totals = run
        .line(&mut p, "a line `racy=R atomic=A expected=E`")?
        .text;
    let (Some(racy), Some(atomic), Some(expected)) = (
        field_num(&totals, "racy"),
        field_num(&totals, "atomic"),
        field_num(&totals, "expected"),
    ) else {
        return Err(Failure::wrong(
            "a line `racy=R atomic=A expected=E`",
            format!("`{totals}`"),
        ));
    };
    let (racy, atomic, expected) = (racy as u64, atomic as u64, expected as u64);
    if expected != n * m {
        return Err(Failure::wrong(
            format!("expected={}", n * m),
            format!("`{totals}`"),
        ));
    }
    expect_shared(program, addr, 16, "the counters")?;
    if atomic != n * m {
        return Err(Failure::wrong(
            format!("the atomic total to be exactly {n} x {m} = {}", n * m),
            format!("`{totals}`"),
        )
        .because("fetch_add loses nothing, so some workers' additions never reached the parent's memory: the mapping must be MAP_SHARED and made before fork"));
    }
    if racy == 0 || racy > n * m {
        return Err(Failure::wrong(
            format!("a racy total between 1 and {}", n * m),
            format!("`{totals}`"),
        ));
    }
    let in_memory = peek_words(program, addr, 2).unwrap_or_else(|| vec![racy, atomic]);
    if in_memory != [racy, atomic] {
        let words = in_memory;
        return Err(Failure::wrong(
            format!(
                "the parent's memory at {addr:#x} to hold the totals it printed, {racy} and {atomic}"
            ),
            format!("it holds {} and {}", words[0], words[1]),
        ));
    }
    let rest = {
        p.close_stdin();
        texts(run.rest(&mut p, "the program to finish")?)
    };
    let lost = n * m - racy;
    let wanted = format!("lost {lost} updates");
    if !rest.contains(&wanted) {
        return Err(Failure::wrong(
            format!("`{wanted}`"),
            format!("it printed {}", quote_lines(&rest)),
        ));
    }
    run.expect_success(&mut p)
}
