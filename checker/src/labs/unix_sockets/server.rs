//! The scenarios of the string-reversing server.

use super::*;

// ---------------------------------------------------------------------
// The scenarios.

pub(super) fn twenty_clients_at_once(run: &mut Run) -> Outcome {
    const N: usize = 20;
    const HELD: usize = 10;
    let server = start_server(run)?;
    let server_pid = server.pid;
    let mut conns = Vec::new();
    for _ in 0..N {
        conns.push(Conn::connect(run, SOCKET)?);
    }
    // Three requests per connection, all different.
    let requests: Vec<Vec<String>> = (0..N)
        .map(|i| {
            (0..3)
                .map(|k| {
                    let n = run.rng.random_range(1..=4);
                    format!("{} {i}.{k}", words(&mut run.rng, n))
                })
                .collect()
        })
        .collect();
    let all: Vec<(usize, String)> = requests
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.iter().map(move |q| (i, q.clone())))
        .collect();
    let first: Vec<String> = requests.iter().map(|r| r[0].clone()).collect();
    let line_of = |s: &str| format!("{s}\n").into_bytes();

    // The first HELD connections get the start of their first request
    // only: a server that waits for the rest of it blocks right there.
    let mut held_rest: Vec<Vec<Vec<u8>>> = vec![Vec::new(); N];
    for (i, rest) in held_rest.iter_mut().enumerate().take(HELD) {
        let bytes = line_of(&first[i]);
        let at = run.rng.random_range(1..bytes.len() - 1);
        let t = until(run, PATIENCE);
        conns[i]
            .write(&bytes[..at], t)
            .map_err(|e| Failure::wrong(format!("the server to read connection {i}"), e))?;
        let pieces = run.rng.random_range(1..=3);
        *rest = cut(&mut run.rng, &bytes[at..], pieces);
    }
    // The others send their whole first request, in pieces, interleaved.
    let mut queues: Vec<Vec<Vec<u8>>> = (0..N)
        .map(|i| {
            if i < HELD {
                Vec::new()
            } else {
                let pieces = run.rng.random_range(1..=4);
                cut(&mut run.rng, &line_of(&first[i]), pieces)
            }
        })
        .collect();
    let t = until(run, PATIENCE);
    interleave(run, &mut conns, &mut queues, t)?;
    let later: Vec<usize> = (HELD..N).collect();
    let t = until(run, PATIENCE);
    expect_replies(&mut conns, &later, &first, &all, t, |i, answered| {
        Failure::wrong(
            format!(
                "a reply on each of connections {HELD} to {} while connections 0 to {} are still in the middle of a request",
                N - 1,
                HELD - 1
            ),
            format!(
                "{answered} of them were answered within {} s, none on connection {i}; {}",
                PATIENCE.as_secs(),
                threads_and_children(server_pid)
            ),
        )
        .because(
            "the server handles one connection at a time: while it waits for the rest of one \
             client's request, every other client waits too. Serve each connection in a thread \
             of its own (or a process of its own, or watch them all with poll)",
        )
    })?;

    // The held connections finish their first request.
    let t = until(run, PATIENCE);
    interleave(run, &mut conns, &mut held_rest, t)?;
    let held: Vec<usize> = (0..HELD).collect();
    let t = until(run, PATIENCE);
    expect_replies(&mut conns, &held, &first, &all, t, |i, _| {
        Failure::wrong(
            format!("a reply on connection {i} once the rest of its request was sent"),
            format!("none within {} s", PATIENCE.as_secs()),
        )
        .because("a request that arrives in several pieces must be read up to its newline, however long the pauses between the pieces")
    })?;

    // Two more requests on every connection, sent together (the second
    // before the first is answered), all connections interleaved.
    let mut queues: Vec<Vec<Vec<u8>>> = (0..N)
        .map(|i| {
            let mut pieces = Vec::new();
            for request in &requests[i][1..3] {
                let n = run.rng.random_range(1..=3);
                pieces.extend(cut(&mut run.rng, &line_of(request), n));
            }
            pieces
        })
        .collect();
    let t = until(run, PATIENCE);
    interleave(run, &mut conns, &mut queues, t)?;
    let everyone: Vec<usize> = (0..N).collect();
    for k in 1..3 {
        let kth: Vec<String> = requests.iter().map(|r| r[k].clone()).collect();
        let t = until(run, PATIENCE);
        expect_replies(&mut conns, &everyone, &kth, &all, t, |i, _| {
            Failure::wrong(
                format!("a reply to request {} of connection {i}", k + 1),
                format!("none within {} s", PATIENCE.as_secs()),
            )
            .because("several requests sent back to back on one connection each get their reply, in order: read one line at a time, and keep what the buffer holds past the newline for the next request")
        })?;
    }
    Ok(())
}

pub(super) fn requests_in_pieces(run: &mut Run) -> Outcome {
    let _server = start_server(run)?;
    let mut conn = Conn::connect(run, SOCKET)?;
    let k = run.rng.random_range(5..=7);
    for r in 0..k {
        let n = run.rng.random_range(2..=5);
        let request = format!("{} {r}", words(&mut run.rng, n));
        let bytes = format!("{request}\n").into_bytes();
        let count = run.rng.random_range(2..=5);
        let pieces = cut(&mut run.rng, &bytes, count);
        let mut pauses = Vec::new();
        for (p, piece) in pieces.iter().enumerate() {
            if p > 0 {
                // Long enough for the server to read each piece alone.
                let ms = run.rng.random_range(25..45);
                pauses.push(ms.to_string());
                std::thread::sleep(Duration::from_millis(ms));
            }
            let t = until(run, PATIENCE);
            conn.write(piece, t)
                .map_err(|e| Failure::wrong("the server to read the whole request", e))?;
        }
        let wanted = reverse(&request);
        let sizes: Vec<String> = pieces.iter().map(|p| p.len().to_string()).collect();
        let why = format!(
            "the request came in {} pieces ({} bytes, {} ms apart): a stream keeps no message \
             boundaries, and one read() returns whatever has arrived so far. Read up to the \
             newline (a BufReader and read_until), and decode the text only once the line is whole",
            pieces.len(),
            sizes.join(" + "),
            pauses.join(", ")
        );
        let t = until(run, PATIENCE);
        match conn.line(t) {
            Got::Line(line) if line == wanted => {}
            Got::Line(line) => {
                return Err(Failure::wrong(
                    format!("`{wanted}`, the reverse of `{request}`"),
                    format!("`{line}`"),
                )
                .because(why));
            }
            Got::Closed => {
                return Err(Failure::wrong(
                    format!("`{wanted}`, the reverse of `{request}`"),
                    "the server closed the connection",
                )
                .because(why));
            }
            Got::Failed(e) => {
                return Err(Failure::wrong(format!("`{wanted}`"), e).because(why));
            }
            Got::TimedOut => {
                return Err(run.timed_out(&format!("`{wanted}`")).because(why));
            }
        }
    }
    // Two requests in one write: each gets its own reply.
    let a = words(&mut run.rng, 2);
    let b = words(&mut run.rng, 3);
    let t = until(run, PATIENCE);
    conn.write(format!("{a}\n{b}\n").as_bytes(), t)
        .map_err(|e| Failure::wrong("the server to read both requests", e))?;
    for request in [&a, &b] {
        let wanted = reverse(request);
        let why = "two requests arrived in one write, so one read() may return both: answer each \
                   line, and keep what follows the first newline for the next request (a BufReader \
                   kept for the whole connection does that)";
        let t = until(run, PATIENCE);
        match conn.line(t) {
            Got::Line(line) if line == wanted => {}
            Got::Line(line) => {
                return Err(Failure::wrong(
                    format!("`{wanted}`, the reverse of `{request}`"),
                    format!("`{line}`"),
                )
                .because(why));
            }
            Got::TimedOut => return Err(run.timed_out(&format!("`{wanted}`")).because(why)),
            Got::Closed | Got::Failed(_) => {
                return Err(Failure::wrong(
                    format!("`{wanted}`"),
                    "the server closed the connection",
                )
                .because(why));
            }
        }
    }
    Ok(())
}

/// One request and its reply on a new connection.
pub(super) fn ask_once(run: &mut Run) -> Outcome {
    let mut conn = Conn::connect(run, SOCKET)?;
    let n = run.rng.random_range(1..=4);
    let request = words(&mut run.rng, n);
    let wanted = reverse(&request);
    let t = until(run, PATIENCE);
    conn.write(format!("{request}\n").as_bytes(), t)
        .map_err(|e| Failure::wrong("the server to read a request", e))?;
    match conn.line(t) {
        Got::Line(line) if line == wanted => Ok(()),
        Got::Line(line) => Err(Failure::wrong(
            format!("`{wanted}`, the reverse of `{request}`"),
            format!("`{line}`"),
        )),
        Got::TimedOut => Err(run.timed_out(&format!("the reply `{wanted}`"))),
        Got::Closed | Got::Failed(_) => Err(Failure::wrong(
            format!("`{wanted}`"),
            "the server closed the connection without replying",
        )),
    }
}

/// Sends `end` on a new connection and expects the server to exit 0.
pub(super) fn stop_server(run: &mut Run, server: &mut Proc) -> Outcome {
    let mut conn = Conn::connect(run, SOCKET)?;
    let t = until(run, PATIENCE);
    conn.write(b"end\n", t)
        .map_err(|e| Failure::wrong("the server to read `end`", e))?;
    drop(conn);
    match exit_within(run, server, PATIENCE, "stop after `end`")? {
        Exit::Code(0) => Ok(()),
        other => Err(Failure::wrong(
            "the server to stop with status 0 after `end`",
            format!("it ended with {other}"),
        )),
    }
}

pub(super) fn stale_socket_file(run: &mut Run) -> Outcome {
    let path = run.sandbox.tmp.join(SOCKET);
    // A listener dropped without removing its file: what a crashed server
    // leaves behind.
    drop(UnixListener::bind(&path).map_err(Failure::internal)?);
    let is_socket = std::fs::symlink_metadata(&path)
        .map(|m| m.file_type().is_socket())
        .unwrap_or(false);
    if !is_socket {
        return Err(Failure::internal("could not leave a stale socket file"));
    }
    let mut server = start_server(run).map_err(|f| {
        f.because(format!(
            "a socket file left behind by a crashed run was at {SOCKET}, with nobody listening: \
             bind() fails with EADDRINUSE while the file exists. Check that connect() is refused \
             (nobody listens), remove the file, and bind again"
        ))
    })?;
    ask_once(run)?;
    stop_server(run, &mut server)
}

pub(super) fn live_server_kept(run: &mut Run) -> Outcome {
    let path = run.sandbox.tmp.join(SOCKET);
    let listener = UnixListener::bind(&path).map_err(Failure::internal)?;
    let inode = std::fs::metadata(&path).map_err(Failure::internal)?.ino();
    let mut p = run.spawn("revserver", &[SOCKET.to_string()])?;
    // Either it exits, or it says it listens (on a path that was taken).
    let t = until(run, PATIENCE);
    let exit = loop {
        if let Ok(exit) = p.wait(Instant::now()) {
            break exit;
        }
        let next = (Instant::now() + Duration::from_millis(20)).min(t);
        let said = match p.next_line(next) {
            Ok(Some(line)) => Some(line),
            Ok(None) => {
                // Output closed: it is on its way out.
                std::thread::sleep(Duration::from_millis(2));
                None
            }
            Err(_) => None,
        };
        if let Some(line) = said {
            let f = Failure::wrong(
                format!("the server to refuse to start: the checker listens on {SOCKET}"),
                format!("it started and said `{}`", line.text),
            );
            let stolen = std::fs::metadata(&path).map(|m| m.ino()).ok() != Some(inode);
            return Err(if stolen {
                f.because(format!(
                    "the server removed the socket file of a live server (the checker, listening \
                     on {SOCKET}) and bound its own there: the first server's clients now reach the \
                     wrong one, and it never knows. Remove the file only when connect() is refused"
                ))
            } else {
                f
            });
        }
        if Instant::now() >= t {
            return Err(run.timed_out("the server to exit: the checker listens on rev.sock"));
        }
    };
    if std::fs::metadata(&path).map(|m| m.ino()).ok() != Some(inode) {
        return Err(Failure::wrong(
            format!("the checker's socket file {SOCKET} to stay as it was"),
            "it was removed or replaced",
        )
        .because(
            "the server removed the socket file of a live server: remove the file only when \
             connect() is refused, which means nobody listens",
        ));
    }
    if exit != Exit::Code(1) {
        return Err(Failure::wrong(
            "the server to report the error and exit with status 1",
            format!("it ended with {exit}"),
        ));
    }
    // The checker's listener still gets connections at its path.
    let _client = UnixStream::connect(&path).map_err(|e| {
        Failure::wrong(
            format!("connections to {SOCKET} to reach the checker's listener"),
            format!("connect() failed: {e}"),
        )
    })?;
    listener.set_nonblocking(true).map_err(Failure::internal)?;
    let reached = run.poll(PATIENCE, || {
        // Drain the server's probing connection too; any one will do.
        listener.accept().ok().map(|_| ())
    });
    if reached.is_none() {
        return Err(Failure::wrong(
            format!("connections to {SOCKET} to reach the checker's listener"),
            "none arrived",
        ));
    }
    Ok(())
}

pub(super) fn socket_file_removed(run: &mut Run) -> Outcome {
    let mut server = start_server(run)?;
    let clients = run.rng.random_range(2..=4);
    for _ in 0..clients {
        ask_once(run)?;
    }
    stop_server(run, &mut server).map_err(|f| {
        f.because(
            "after `end` the server stops accepting, removes its socket file, waits for the \
             clients still connected (none here) and returns. A thread that receives `end` must \
             wake the main thread blocked in accept() (a connection of its own does it)",
        )
    })?;
    let path = run.sandbox.tmp.join(SOCKET);
    if std::fs::symlink_metadata(&path).is_ok() {
        return Err(Failure::wrong(
            format!("no {SOCKET} once the server has exited"),
            format!("{SOCKET} is still there"),
        )
        .because(format!(
            "the socket file {SOCKET} was left behind: it stays on disk after the listener is \
             closed and the process exits, and the next run's bind() fails with EADDRINUSE. \
             Remove it with std::fs::remove_file when the server stops"
        )));
    }
    Ok(())
}
