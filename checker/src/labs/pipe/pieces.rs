//! The unkind peers: the checker joins the chat's pipe as a third writer
//! and sends messages in halves, in bursts and in random pieces; it counts
//! the producer's write() calls; and it reads the descriptor table of every
//! process a pipe connects, the writer children too.

use crate::pid::Pid;
use std::fs::File;
use std::io::Write;
use std::time::Duration;

use rand::Rng;

use super::ends::{describe_ends, pipe_ends, with_pipe_cause};
use super::{
    PATIENCE, compare_files, exit_0, expect_child, expect_line_in, line, rest, spins_at_eof, words,
    write_line,
};
use crate::peers::pipe_peer;
use crate::process::Proc;
use crate::scenario::{Failure, Outcome, Run, quote_lines};
use crate::traffic::{self, Pieces};
use crate::usage::Usage;

/// The longest message `send` accepts (`PIPE_BUF - 1`, with its newline
/// one atomic write).
const MAX_MESSAGE: usize = traffic::PIPE_BUF - 1;

/// How long the checker pauses between the halves of a message: long
/// enough that the consumer reads the first half on its own.
const HALF_PAUSE: Duration = Duration::from_millis(400);

/// The chat, and the checker's own write end of its pipe.
struct Chat {
    p: Proc,
    consumer: Pid,
    /// Opened through /proc: the same pipe the producer writes.
    end: File,
    /// Messages the consumer has printed so far.
    got: usize,
}

impl Chat {
    fn start(run: &mut Run) -> Result<Chat, Failure> {
        let mut p = run.spawn("chat", &[])?;
        let program = p.pid;
        let first = line(run, &mut p, "a line `producer pid=P consumer=C`")?;
        let Some(consumer) = Pid::field(&first, "consumer") else {
            return Err(Failure::wrong(
                "a line `producer pid=P consumer=C`",
                format!("`{first}`"),
            ));
        };
        expect_child(consumer, program, "the consumer")?;
        // The producer's write end, and the consumer's read end of it.
        let (producer_ends, _) = pipe_ends(program);
        let (consumer_ends, _) = pipe_ends(consumer);
        let Some((&fd, _)) = producer_ends.iter().find(|(_, (target, access))| {
            *access == 1 && consumer_ends.values().any(|(t, a)| t == target && *a != 1)
        }) else {
            return Err(Failure::wrong(
                "the producer to hold the write end of a pipe whose read end the consumer holds",
                format!(
                    "the producer holds {}; the consumer holds {}",
                    describe_ends(&producer_ends),
                    describe_ends(&consumer_ends)
                ),
            ));
        };
        let end = pipe_peer::join(program, fd, true)
            .map_err(|e| Failure::internal(format!("opening the producer's fd {fd}: {e}")))?;
        Ok(Chat {
            p,
            consumer,
            end,
            got: 0,
        })
    }

    fn wanted(&self, message: &str) -> String {
        format!("consumer pid={} got: {message}", self.consumer)
    }

    /// The consumer waits in a read of the pipe: whatever comes next
    /// arrives in one piece in its next read.
    fn until_reading(&self, run: &Run) {
        run.until_blocked(self.consumer, PATIENCE);
    }

    fn inject(&mut self, run: &Run, bytes: &[u8]) -> Outcome {
        self.end.write_all(bytes).map_err(|e| {
            Failure::wrong(
                "the consumer to read its pipe",
                format!("the checker could not write to it ({e})"),
            )
        })?;
        run.activity.touch();
        Ok(())
    }

    /// The next line must be `message`, as the consumer prints it.
    fn expect(&mut self, run: &Run, message: &str, how: &str) -> Outcome {
        self.expect_after(run, message, how, false)
    }

    /// Like [`Chat::expect`]; `after_its_neighbour`: another message of the
    /// same write has been printed already.
    fn expect_after(
        &mut self,
        run: &Run,
        message: &str,
        how: &str,
        after_its_neighbour: bool,
    ) -> Outcome {
        let wanted = self.wanted(message);
        let program = self.p.pid;
        let got = run
            .line_within(&mut self.p, PATIENCE, &format!("`{}`", short(&wanted)))
            .map(|l| l.text)
            .map_err(|f| self.lost(f, how, after_its_neighbour, program))?;
        if got != wanted {
            return Err(self.mismatch(&wanted, &got, message, how));
        }
        self.got += 1;
        Ok(())
    }

    /// A message that did not come: if the pipe is empty and the consumer
    /// waits in read(), it has read the message's bytes without printing
    /// them. After another message of the same write was printed, they
    /// went with a buffer that was dropped; otherwise it waits for more
    /// before handing the message out.
    fn lost(&self, f: Failure, how: &str, after_its_neighbour: bool, program: Pid) -> Failure {
        let empty = pipe_peer::unread(&self.end) == Some(0);
        let reading = crate::procfs::blocked(self.consumer)
            .syscall
            .is_some_and(|(nr, _)| crate::diagnose::syscall_name(nr) == Some("read"));
        if f.kind != crate::scenario::Kind::TimedOut || !empty || !reading {
            return with_pipe_cause(f, program);
        }
        if after_its_neighbour {
            return f
                .because(format!(
                    "the message was sent {how}, and the one before it in that write was printed; \
                     the pipe is empty now, so the consumer has read this one's bytes too, and it \
                     waits in read() for more without having printed it: it lost them. A reader \
                     that reads ahead (a BufReader) keeps what it read beyond the first line, and \
                     must be kept from one message to the next"
                ))
                .hint(
                    "In `consume`, make one BufReader before the loop and pass it to every \
                     `receive`: a BufReader made for one message and dropped takes the bytes it \
                     read ahead with it.",
                );
        }
        f.because(format!(
            "the message was sent {how}; the pipe is empty now, so the consumer has read its \
             bytes, newline included, and it waits in read() for more before printing it: \
             `receive` must return as soon as one line is in, not wait for more (end of file, or \
             a full buffer)"
        ))
        .hint("In `receive`, BufRead::read_line returns as soon as it has one line: one call, no loop until end of file.")
    }

    fn mismatch(&self, wanted: &str, got: &str, message: &str, how: &str) -> Failure {
        let failure = Failure::wrong(format!("`{}`", short(wanted)), format!("`{}`", short(got)));
        let prefix = self.wanted("");
        let printed = got.strip_prefix(&prefix);
        // A part cut inside a character ends in one U+FFFD (the character
        // it cut), and may be nothing else when the cut fell in the first
        // one. Decoding each read on its own leaves two at the cut instead.
        let start = printed.map(|part| part.strip_suffix('\u{fffd}').unwrap_or(part));
        match printed {
            Some(part)
                if part != message
                    && start.is_some_and(|s| {
                        s.len() < message.len()
                            && !s.ends_with('\u{fffd}')
                            && message.starts_with(s)
                    }) =>
            {
                failure
                    .because(format!(
                        "it printed the first {} of the message's {} bytes as a whole message. The \
                     message was sent {how}: one read() returned only part of it, and `receive` \
                     took that part for the whole. A read returns what the pipe holds at that \
                     moment, not one message",
                        start.map_or(0, str::len),
                        message.len()
                    ))
                    .hint(
                        "In `receive`, read up to the newline that ends the message \
                     (BufRead::read_line), however many reads it takes.",
                    )
            }
            Some(part) if part.contains('\u{fffd}') => failure
                .because(format!(
                    "a character came out as U+FFFD. The message was sent {how}, cut inside a \
                     character of several bytes: the reader decoded each read on its own. \
                     Collect the bytes up to the newline first, then decode them"
                ))
                .hint(
                    "Read the whole line as bytes (read_line, or read_until(b'\\n')) and turn \
                     it into text once it is complete.",
                ),
            _ if !got.starts_with(&prefix) => failure
                .because(format!(
                    "a line that is not the consumer's: the message was sent {how}, and the \
                 consumer printed something with a newline inside it. Several messages came in \
                 one read() and `receive` returned them as one: a read returns what the pipe \
                 holds, maybe several messages. Return one line at a time"
                ))
                .hint(
                    "In `receive`, use BufRead::read_line: it returns one line and keeps the rest \
                 for the next call.",
                ),
            _ => failure,
        }
    }
}

fn short(s: &str) -> String {
    if s.len() <= 120 {
        return s.to_string();
    }
    let mut end = 100;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes in all)", &s[..end], s.len())
}

/// A message with characters of 2 and 3 bytes, and a byte offset inside
/// one of them.
fn message_to_cut(run: &mut Run) -> (String, usize) {
    let n = run.rng.random_range(3..=6);
    let message = format!("{} → {}", words(&mut run.rng, n), words(&mut run.rng, 2));
    let inside: Vec<usize> = (1..message.len())
        .filter(|&i| !message.is_char_boundary(i))
        .collect();
    let at = inside[run.rng.random_range(0..inside.len())];
    (message, at)
}

pub(super) fn chat_in_pieces(run: &mut Run) -> Outcome {
    let mut chat = Chat::start(run)?;
    let producer = chat.p.pid;
    let writes_before = pipe_peer::write_calls(producer);
    let mut by_producer = 0;

    // One ordinary message, through the producer.
    let first = words(&mut run.rng, 3);
    write_line(&mut chat.p, &first)?;
    by_producer += 1;
    chat.expect(run, &first, "by the producer")?;

    // A message in two writes, cut inside a character, with a pause
    // between the halves: nothing may come out before the second half,
    // and the consumer must sleep meanwhile.
    let (message, at) = message_to_cut(run);
    let bytes = format!("{message}\n").into_bytes();
    chat.until_reading(run);
    chat.inject(run, &bytes[..at])?;
    run.expect_asleep(
        chat.consumer,
        HALF_PAUSE,
        "the consumer",
        "the rest of a message",
    )?;
    if let Some(early) = run.line_if_any(&mut chat.p, Duration::from_millis(50)) {
        return Err(chat.mismatch(
            &chat.wanted(&message),
            &early.text,
            &message,
            "in two writes, the first ending inside a character",
        ));
    }
    chat.inject(run, &bytes[at..])?;
    chat.expect(
        run,
        &message,
        "in two writes, the first ending inside a character",
    )?;

    // A burst: three messages in one write, so that one read returns
    // them all.
    let burst: Vec<String> = (0..3)
        .map(|i| format!("{} {i}", words(&mut run.rng, 2)))
        .collect();
    chat.until_reading(run);
    chat.inject(run, &traffic::burst(&burst))?;
    for (i, m) in burst.iter().enumerate() {
        chat.expect_after(run, m, "with two others in one write", i > 0)?;
    }

    // The longest message there is, through the producer: more than a
    // read buffer of 1 KiB, one write of PIPE_BUF bytes.
    let longest = traffic::text(&mut run.rng, MAX_MESSAGE);
    write_line(&mut chat.p, &longest)?;
    by_producer += 1;
    chat.expect(run, &longest, "by the producer, in one write of 4096 bytes")?;

    // A long one in random pieces, a few milliseconds apart.
    let len = run.rng.random_range(traffic::READ_BUFFER + 1..MAX_MESSAGE);
    let pieced = traffic::text(&mut run.rng, len);
    let bytes = format!("{pieced}\n").into_bytes();
    let pieces = Pieces::random(&mut run.rng, &bytes, 700, Duration::from_millis(15));
    chat.until_reading(run);
    let activity = run.activity.clone();
    pieces
        .write_to(&mut chat.end, &activity)
        .map_err(|e| Failure::internal(format!("writing to the consumer's pipe: {e}")))?;
    chat.expect(run, &pieced, "in random pieces, a few milliseconds apart")?;

    // One write() per message: the producer made no other write.
    if let (Some(before), Some(after)) = (writes_before, pipe_peer::write_calls(producer))
        && after - before > by_producer
    {
        return Err(Failure::wrong(
            format!("the producer to make one write() per message ({by_producer} messages)"),
            format!("it made {} write() calls for them", after - before),
        )
        .because(
            "`send` writes a message in more than one write() (the text, then the newline; or \
             `write!`/`writeln!` on a File, which writes each piece of the format separately). \
             Two writers on one pipe can then interleave their pieces, and a reader may wake up \
             with half a message: a message of at most PIPE_BUF bytes in one write() is atomic",
        )
        .hint("In `send`, build the whole line (message and newline) in one buffer and write it with one call."));
    }

    // The sentinel, through the producer.
    write_line(&mut chat.p, "END")?;
    let k = chat.got;
    let mut lines = Vec::new();
    for _ in 0..3 {
        lines.push(line(
            run,
            &mut chat.p,
            "both processes to stop at the sentinel END",
        )?);
    }
    for wanted in [
        format!("producer: sent {by_producer} messages and the sentinel"),
        format!(
            "consumer pid={}: sentinel after {k} messages",
            chat.consumer
        ),
        format!("producer: consumer {} exited with 0", chat.consumer),
    ] {
        expect_line_in(&lines, &wanted)?;
    }
    let exit = exit_0(run, &mut chat.p);
    chat.p.close_stdin();
    exit
}

// ---------------------------------------------------------------------
// Every process holds the ends it uses, and only those.

/// `who` (pid) holds exactly one pipe end beyond 0, 1 and 2, for `mode`
/// (0 read, 1 write); returns its pipe.
fn one_end(pid: Pid, who: &str, mode: u32, uses: &str) -> Result<String, Failure> {
    let (ends, _) = pipe_ends(pid);
    let wanted = if mode == 0 { "read end" } else { "write end" };
    let other = if mode == 0 { "write end" } else { "read end" };
    let right: Vec<&String> = ends
        .values()
        .filter(|(_, a)| *a == mode)
        .map(|(t, _)| t)
        .collect();
    if ends.len() == 1 && right.len() == 1 {
        return Ok(right[0].clone());
    }
    let failure = Failure::wrong(
        format!("{who} (pid {pid}) to hold one pipe end beyond 0, 1 and 2: the {wanted} it {uses}"),
        format!("it holds {}", describe_ends(&ends)),
    );
    let keeps_other = ends.values().any(|(_, a)| *a != mode);
    Err(if keeps_other {
        let cost = if mode == 0 {
            "while it holds a write end of the pipe it reads, its read() can never return end of file"
        } else {
            "while it holds a read end of the pipe it writes, its write() can never fail with EPIPE: \
             if its reader dies, it fills the pipe and blocks for ever"
        };
        failure
            .because(format!("{who} kept the {other} it does not use: {cost}"))
            .hint("Right after fork, each process drops the end it does not use: the reader the write end, the writer the read end.")
    } else {
        failure
    })
}

pub(super) fn each_process_holds_its_end(run: &mut Run) -> Outcome {
    // A reader child (`spawn_reader`): both wait in read() once the
    // parent has printed its line, the child on the pipe, the parent on
    // its stdin.
    let mut p = run.spawn("hello", &[])?;
    let program = p.pid;
    let first = line(run, &mut p, "a line `parent pid=P child=C`")?;
    let Some(child) = Pid::field(&first, "child") else {
        return Err(Failure::wrong(
            "a line `parent pid=P child=C`",
            format!("`{first}`"),
        ));
    };
    expect_child(child, program, "the child")?;
    run.until_blocked(child, PATIENCE);
    run.until_blocked(program, PATIENCE);
    let read_end = one_end(child, "the reading child", 0, "reads")?;
    let write_end = one_end(program, "the parent", 1, "writes to its child")?;
    if read_end != write_end {
        return Err(Failure::wrong(
            "the parent's write end and the child's read end on one pipe",
            format!("the parent writes {write_end}, the child reads {read_end}"),
        ));
    }
    let message = words(&mut run.rng, 4);
    write_line(&mut p, &message)?;
    p.close_stdin();
    let said = rest(
        run,
        &mut p,
        "the child to print the message and the parent to finish",
    )?;
    expect_line_in(&said, &message)?;
    exit_0(run, &mut p)?;

    // A writer child (`spawn_writer`), whose input is a FIFO the checker
    // feeds: it waits in open() until the checker opens it, and the
    // parent waits in read() on the pipe meanwhile.
    let fifo = run.sandbox.tmp.join("in.fifo");
    nix::unistd::mkfifo(
        &fifo,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )
    .map_err(|e| Failure::internal(format!("mkfifo: {e}")))?;
    let mut p = run.spawn("gather", &["in.fifo".to_string(), "out.bin".to_string()])?;
    let program = p.pid;
    let first = line(run, &mut p, "a line `child pid=C ppid=P sending in.fifo`")?;
    let Some(child) = Pid::field(&first, "pid") else {
        return Err(Failure::wrong(
            "a line `child pid=C ppid=P sending in.fifo`",
            format!("`{first}`"),
        ));
    };
    expect_child(child, program, "the writing child")?;
    run.until_blocked(child, PATIENCE);
    run.until_blocked(program, PATIENCE);
    let write_end = one_end(child, "the writing child", 1, "writes to its parent")?;
    let read_end = one_end(program, "the parent", 0, "reads from its child")?;
    if read_end != write_end {
        return Err(Failure::wrong(
            "the child's write end and the parent's read end on one pipe",
            format!("the child writes {write_end}, the parent reads {read_end}"),
        ));
    }
    // Past a pipe's capacity, in random pieces with pauses.
    let len = run
        .rng
        .random_range(traffic::PIPE_CAPACITY + 1..3 * traffic::PIPE_CAPACITY);
    let data = traffic::every_byte(&mut run.rng, len);
    let input = std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .map_err(|e| Failure::internal(format!("opening in.fifo: {e}")))?;
    let pieces = Pieces::random(&mut run.rng, &data, 40_000, Duration::from_millis(20));
    let writer = pieces.send_from_thread(input, run.activity.clone());
    let said = rest(run, &mut p, "the parent to collect everything and finish")?;
    let _ = writer.join();
    if !said
        .iter()
        .any(|l| l.starts_with(&format!("parent pid={program} got {}", data.len())))
    {
        return Err(Failure::wrong(
            format!(
                "`parent pid={program} got {} bytes; the child exited with 0`",
                data.len()
            ),
            format!("the program printed {}", quote_lines(&said)),
        ));
    }
    exit_0(run, &mut p)?;
    compare_files(&data, &run.sandbox.tmp.join("out.bin"), "the parent")
}

// ---------------------------------------------------------------------
// Messages that must not go through: one too long for one atomic write,
// and one cut short because its writer died.

pub(super) fn chat_refuses_broken_messages(run: &mut Run) -> Outcome {
    too_long(run)?;
    writer_dies_mid_message(run)
}

/// A line longer than MAX_MESSAGE on the producer's stdin: `send` must
/// refuse it, and the producer fail.
fn too_long(run: &mut Run) -> Outcome {
    let mut chat = Chat::start(run)?;
    let first = words(&mut run.rng, 3);
    write_line(&mut chat.p, &first)?;
    chat.expect(run, &first, "by the producer")?;
    let len = run.rng.random_range(MAX_MESSAGE + 1..MAX_MESSAGE + 3000);
    let long = traffic::text(&mut run.rng, len);
    write_line(&mut chat.p, &long)?;
    chat.p.close_stdin();
    let wanted = chat.wanted(&long);
    let before = Usage::of(chat.consumer);
    let Chat {
        mut p,
        end,
        consumer,
        ..
    } = chat;
    drop(end);
    let said = rest(run, &mut p, "the producer to refuse the message and stop").map_err(|f| {
        spins_at_eof(
            f,
            consumer,
            "the consumer",
            "its producer has gone",
            &before,
        )
    })?;
    if said.iter().any(|l| l == &wanted) {
        return Err(Failure::wrong(
            format!("`send` to refuse a message of {len} bytes (at most MAX_MESSAGE = {MAX_MESSAGE})"),
            "the consumer received it and printed it",
        )
        .because(format!(
            "`send` wrote a message of {} bytes with its newline: past PIPE_BUF ({}) a write() \
             to a pipe is no longer atomic, and with several writers the kernel may split it \
             and interleave it with theirs",
            len + 1,
            traffic::PIPE_BUF
        ))
        .hint("In `send`, refuse (bail!) a message longer than MAX_MESSAGE, or holding a newline, before writing anything."));
    }
    match run.exit_within(&mut p, PATIENCE) {
        Ok(crate::process::Exit::Code(0)) => Err(Failure::wrong(
            "the producer to fail: `send` refuses the message, `produce` returns the error",
            "it exited with 0",
        )),
        Ok(_) => Ok(()),
        Err(f) => Err(with_pipe_cause(f, p.pid)),
    }
}

/// The producer is killed while half a message (no newline) is in the
/// pipe: the consumer reads end of file in the middle of a message, and
/// must not take that half for a message.
fn writer_dies_mid_message(run: &mut Run) -> Outcome {
    let mut chat = Chat::start(run)?;
    let first = words(&mut run.rng, 3);
    write_line(&mut chat.p, &first)?;
    chat.expect(run, &first, "by the producer")?;
    let n = run.rng.random_range(2..=5);
    let half = words(&mut run.rng, n);
    chat.until_reading(run);
    chat.inject(run, half.as_bytes())?;
    run.until_blocked(chat.consumer, PATIENCE);
    // The writers vanish: the producer dies, the checker closes its end.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from(chat.p.pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    let Chat {
        mut p,
        consumer,
        end,
        ..
    } = chat;
    let before = Usage::of(consumer);
    drop(end);
    run.activity.touch();
    let said = rest(run, &mut p, "the consumer to stop at end of file").map_err(|f| {
        spins_at_eof(
            f,
            consumer,
            "the consumer",
            "its writers have gone",
            &before,
        )
    })?;
    let printed = format!("consumer pid={consumer} got: {half}");
    if said.iter().any(|l| l == &printed) {
        return Err(Failure::wrong(
            "the consumer to refuse a message its writer never finished (no newline before end of file)",
            format!("it printed `{printed}`"),
        )
        .because(
            "`receive` returned a line that had no newline: its writer died in the middle of the \
             message, and what arrived is only its start. A line without its newline at end of \
             file is an error, not a message",
        )
        .hint("In `receive`, when read_line returns a line that does not end with '\\n', return an error (the writer closed the pipe in the middle of a message)."));
    }
    Ok(())
}
