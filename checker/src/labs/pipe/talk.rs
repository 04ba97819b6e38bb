//! The conversations: a producer and its consumer, a client and its
//! server over two pipes, a writer whose reader goes away.

use crate::pid::Pid;
use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;

use super::ends::{describe_ends, pipe_ends, with_advice, with_pipe_cause};
use super::spins_at_eof;
use super::{
    PATIENCE, exit_0, expect_child, expect_line_in, line, rest, timed_out, words, write_line,
};
use crate::diagnose::syscall_name;
use crate::process::Exit;
use crate::procfs;
use crate::scenario::{Failure, Outcome, Run, quote_lines};
use crate::usage::Usage;

pub(super) fn producer_consumer_chat(run: &mut Run) -> Outcome {
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

    let k = run.rng.random_range(5..=9);
    for i in 0..k {
        // Uneven intervals: a pause of 0 to 60 ms before each message.
        let pause = run.rng.random_range(0..60);
        std::thread::sleep(Duration::from_millis(pause));
        let n = run.rng.random_range(1..=5);
        let message = format!("{i}: {}", words(&mut run.rng, n));
        write_line(&mut p, &message)?;
        let wanted = format!("consumer pid={consumer} got: {message}");
        // The line must come before the next message is sent.
        let line = line(run, &mut p, &format!("the consumer to print `{wanted}`"))
            .map_err(|f| {
                with_advice(
                    f,
                    "A message sent must be printed as soon as it arrives, without waiting for more: \
                     `receive` returns as soon as one line is in (read_line), and `send` writes the whole line at once",
                )
            })?;
        if line != wanted {
            return Err(Failure::wrong(format!("`{wanted}`"), format!("`{line}`")));
        }
    }
    // The sentinel; stdin stays open, and so does the producer's pipe.
    write_line(&mut p, "END")?;
    let mut lines = Vec::new();
    for _ in 0..3 {
        let line = line(run, &mut p, "both processes to stop at the sentinel END")
            .map_err(|f| {
                with_advice(
                    f,
                    "After END the producer keeps its end open until the consumer exits, so the consumer must stop at the sentinel itself, not wait for end of file",
                )
            })?;
        lines.push(line);
    }
    for wanted in [
        format!("producer: sent {k} messages and the sentinel"),
        format!("consumer pid={consumer}: sentinel after {k} messages"),
        format!("producer: consumer {consumer} exited with 0"),
    ] {
        expect_line_in(&lines, &wanted)?;
    }
    let exit = exit_0(run, &mut p);
    p.close_stdin();
    exit
}

pub(super) fn request_response(run: &mut Run) -> Outcome {
    let mut p = run.spawn("ask", &[])?;
    let program = p.pid;
    let first = line(run, &mut p, "a line `client pid=P server=S`")?;
    let Some(server) = Pid::field(&first, "server") else {
        return Err(Failure::wrong(
            "a line `client pid=P server=S`",
            format!("`{first}`"),
        ));
    };
    expect_child(server, program, "the server")?;
    // Both wait in read() now: the client on its stdin, the server for a
    // request. Their descriptor tables are final.
    let settled = run.poll(PATIENCE, || {
        let reading = |pid| {
            procfs::blocked(pid)
                .syscall
                .is_some_and(|(nr, _)| syscall_name(nr) == Some("read"))
        };
        (reading(server) && reading(program)).then_some(())
    });
    if settled.is_none() {
        return Err(timed_out(
            run,
            program,
            "the client and the server to wait in read()",
        ));
    }
    let (server_ends, _) = pipe_ends(server);
    let (client_ends, _) = pipe_ends(program);
    let shape = format!(
        "the server holds {}; the client holds {}",
        describe_ends(&server_ends),
        describe_ends(&client_ends)
    );
    let targets = |ends: &BTreeMap<i32, (String, u32)>, mode: u32| -> Vec<String> {
        ends.values()
            .filter(|(_, a)| *a == mode)
            .map(|(t, _)| t.clone())
            .collect()
    };
    let (s_read, s_write) = (targets(&server_ends, 0), targets(&server_ends, 1));
    let (c_read, c_write) = (targets(&client_ends, 0), targets(&client_ends, 1));
    let distinct: std::collections::BTreeSet<&String> = server_ends
        .values()
        .chain(client_ends.values())
        .map(|(t, _)| t)
        .collect();
    if distinct.len() < 2
        || s_read.iter().any(|t| s_write.contains(t))
        || c_read.iter().any(|t| c_write.contains(t))
    {
        return Err(Failure::wrong(
            "two pipes: requests from client to server, replies from server to client",
            shape,
        )
        .because(
            "one pipe is used both ways. A pipe carries bytes one way, and whoever reads first gets them: \
             the client may read back its own request (the `sleep(2)` of the tutorials this course grew from only makes that less likely). Use two pipes",
        ));
    }
    if server_ends.len() != 2 || client_ends.len() != 2 || s_read.len() != 1 || s_write.len() != 1 {
        return Err(Failure::wrong(
            "each process to hold exactly the two ends it uses, one read end and one write end",
            shape,
        )
        .because("after fork, each side drops the two ends it does not use: a forgotten write end means no end of file, a forgotten read end means no EPIPE"));
    }
    if c_write != s_read || c_read != s_write {
        return Err(Failure::wrong(
            "the client's write end and the server's read end on one pipe, and the other way round on the second",
            shape,
        ));
    }

    let n = run.rng.random_range(5..=10);
    for i in 0..n {
        let words_n = run.rng.random_range(1..=4);
        let request = format!("{} {i}", words(&mut run.rng, words_n));
        write_line(&mut p, &request)?;
        let reversed: String = request.chars().rev().collect();
        let wanted = format!("reply: {reversed}");
        let line = line(run, &mut p, &format!("`{wanted}`"))?;
        if line != wanted {
            let why = if line == format!("reply: {request}") {
                "the reply is the request itself: the client read back its own request. Use two pipes"
            } else {
                "each request gets its own reply, in order"
            };
            return Err(Failure::wrong(format!("`{wanted}`"), format!("`{line}`")).because(why));
        }
    }
    let before = Usage::of(server);
    p.close_stdin();
    let rest = rest(
        run,
        &mut p,
        "the server to end once the client closes the requests pipe",
    )
    .map_err(|f| {
        let f = spins_at_eof(
            f,
            server,
            "the server",
            "the client has closed the requests pipe",
            &before,
        );
        with_advice(
            f,
            "`stop` closes the requests pipe; the server sees end of file and returns",
        )
    })?;
    expect_line_in(&rest, &format!("client: server {server} exited with 0"))?;
    exit_0(run, &mut p)
}

pub(super) fn reader_gone_epipe(run: &mut Run) -> Outcome {
    let n: u64 = run.rng.random_range(1000..30_000);
    let mut p = run.spawn("firehose", &[n.to_string()])?;
    let program = p.pid;
    let first = line(run, &mut p, "a line `writer pid=P reader=C`")?;
    let Some(reader) = Pid::field(&first, "reader") else {
        return Err(Failure::wrong(
            "a line `writer pid=P reader=C`",
            format!("`{first}`"),
        ));
    };
    let rest = rest(run, &mut p, "the writer to notice that its reader is gone")
        .map_err(|f| {
            with_advice(
                f,
                "A writer gets EPIPE only when no read end is open anywhere: if the writer still holds the read end itself, the pipe just fills up. Drop the read end in the parent right after fork",
            )
        })?;
    expect_line_in(
        &rest,
        &format!("reader pid={reader} read {n} bytes and leaves"),
    )?;
    let Some(epipe) = rest.iter().find(|l| l.starts_with("writer: EPIPE after ")) else {
        return Err(Failure::wrong(
            "`writer: EPIPE after N bytes: the reader is gone`",
            format!("the program printed {}", quote_lines(&rest)),
        ));
    };
    let written = epipe
        .split_whitespace()
        .nth(3)
        .and_then(|w| w.parse::<u64>().ok())
        .unwrap_or(0);
    if written < n {
        return Err(Failure::wrong(
            format!("EPIPE after at least the {n} bytes the reader read"),
            format!("`{epipe}`"),
        ));
    }
    expect_line_in(&rest, &format!("writer: reader {reader} exited with 0"))?;
    match run.exit_within(&mut p, PATIENCE) {
        Ok(Exit::Code(0)) => Ok(()),
        Ok(Exit::Signal(nix::sys::signal::Signal::SIGPIPE)) => Err(Failure::wrong(
            "the writer to report EPIPE and exit 0",
            "SIGPIPE killed it",
        )
        .because("the writer died of SIGPIPE: Rust programs ignore it, unless something set it back to the default")),
        Ok(other) => Err(Failure::wrong("exit status 0", format!("{other}"))),
        Err(f) => Err(with_pipe_cause(f, program)),
    }
}
