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
use crate::process::{Exit, Proc, Waited};
use crate::procfs;
use crate::sandbox::checker_pid;
use crate::scenario::{Failure, Fixture, Outcome, Run, Scenario, field_num, fields};

pub static LAB: Lab = Lab {
    number: 9,
    slug: "queues",
    title: "Message queues",
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
    ],
    variants: &[],
};

/// How long the checker waits for something that takes a correct program
/// a few milliseconds: generous, for a loaded machine.
const PATIENCE: Duration = Duration::from_secs(5);

/// The message size of the lab's queues (`given::MESSAGE_SIZE`).
const MESSAGE_SIZE: usize = 512;

// ---------------------------------------------------------------------
// Queues, from the checker's side.

/// The system limits in /proc/sys/fs/mqueue.
fn limit(name: &str) -> Result<i64, Failure> {
    let path = format!("/proc/sys/fs/mqueue/{name}");
    std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| {
            Failure::internal(format!(
                "cannot read {path}: are POSIX message queues available?"
            ))
        })
}

/// Queues the checker removes when the scenario ends, whoever made them.
/// (The sandbox removes what /dev/mqueue shows, but that file system is
/// not mounted everywhere; these names are known.)
struct Names(Vec<String>);

impl Drop for Names {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = mq_unlink(name.as_str());
        }
    }
}

/// A queue of the checker's own, closed when dropped.
struct Mq(Option<MqdT>);

impl Mq {
    fn get(&self) -> &MqdT {
        self.0.as_ref().expect("open queue")
    }
}

impl Drop for Mq {
    fn drop(&mut self) {
        if let Some(q) = self.0.take() {
            let _ = mq_close(q);
        }
    }
}

fn create(name: &str, capacity: usize, size: usize, flags: MQ_OFlag) -> Result<Mq, Failure> {
    let attr = MqAttr::new(0, capacity as _, size as _, 0);
    let _ = mq_unlink(name);
    mq_open(
        name,
        flags | MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL,
        Mode::S_IRUSR | Mode::S_IWUSR,
        Some(&attr),
    )
    .map(|q| Mq(Some(q)))
    .map_err(|e| Failure::internal(format!("creating the queue {name}: {e}")))
}

fn open(name: &str, flags: MQ_OFlag) -> nix::Result<Mq> {
    mq_open(name, flags | MQ_OFlag::O_NONBLOCK, Mode::empty(), None).map(|q| Mq(Some(q)))
}

/// Whether the queue `name` exists now.
fn exists(name: &str) -> bool {
    !matches!(open(name, MQ_OFlag::O_RDONLY), Err(Errno::ENOENT))
}

/// One message if there is one (the queue is open O_NONBLOCK).
fn try_receive(q: &Mq) -> Option<(Vec<u8>, u32)> {
    let size = mq_getattr(q.get()).ok()?.msgsize() as usize;
    let mut buf = vec![0u8; size];
    let mut prio = 0;
    loop {
        match mq_receive(q.get(), &mut buf, &mut prio) {
            Ok(n) => {
                buf.truncate(n);
                return Some((buf, prio));
            }
            Err(Errno::EINTR) => continue,
            Err(_) => return None,
        }
    }
}

/// Sends on a queue open O_NONBLOCK, waiting (within the deadline) while
/// it is full.
fn send(run: &Run, q: &Mq, name: &str, message: &[u8], prio: u32) -> Outcome {
    let mut error = None;
    let sent = run.poll(PATIENCE, || match mq_send(q.get(), message, prio) {
        Ok(()) => Some(true),
        Err(Errno::EAGAIN | Errno::EINTR) => None,
        Err(e) => {
            error = Some(e);
            Some(false)
        }
    });
    match (sent, error) {
        (Some(true), _) => Ok(()),
        (_, Some(e)) => Err(Failure::internal(format!("mq_send({name}): {e}"))),
        _ => Err(stalled(
            run,
            format!("room in {name} for the checker's message"),
            format!(
                "the queue stayed full for {} s: nobody takes the messages out",
                PATIENCE.as_secs()
            ),
        )),
    }
}

/// A failure with where each process is blocked now.
fn stalled(run: &Run, expected: String, happened: String) -> Failure {
    let program = run.spawned.first().map(|s| s.pid).unwrap_or(0);
    let mut f = Failure::wrong(expected, happened);
    f.details = diagnose::hang_report(program, checker_pid())
        .into_iter()
        .map(|l| format!("- {l}"))
        .collect();
    f
}

/// Which of `names` (queues the program should have removed) are still
/// there: seen in /dev/mqueue where that is mounted, or still opening.
/// Queues of the checker's own are not in `names`, so they do not count.
fn left_behind(run: &Run, names: &[String]) -> Vec<String> {
    let shown: Vec<String> = run
        .sandbox
        .ipc_objects()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    names
        .iter()
        .map(|name| format!("/dev/mqueue{name}"))
        .zip(names)
        .filter(|(path, name)| shown.contains(path) || exists(name))
        .map(|(path, _)| path)
        .collect()
}

fn expect_nothing_left(run: &Run, names: &[String], who: &str, fix: &str) -> Outcome {
    let left = left_behind(run, names);
    if left.is_empty() {
        return Ok(());
    }
    Err(Failure::wrong(
        format!("no message queue left once {who} has exited"),
        format!("left behind: {}", left.join(", ")),
    )
    .because(format!(
        "a message queue lives in the kernel until someone calls mq_unlink, even after every \
         process has closed it (it would stay until the machine reboots): {fix}"
    )))
}

// ---------------------------------------------------------------------
// Talking to the programs.

fn line_within(run: &Run, p: &mut Proc, within: Duration, what: &str) -> Result<String, Failure> {
    let until = (Instant::now() + within).min(run.deadline);
    match p.next_line(until) {
        Ok(Some(line)) => Ok(line.text),
        Ok(None) => Err(Failure::wrong(
            what.to_string(),
            format!("{} closed its output before printing it", p.name),
        )),
        Err(Waited::TimedOut) => Err(run.timed_out(what)),
    }
}

fn rest_within(
    run: &Run,
    p: &mut Proc,
    within: Duration,
    what: &str,
) -> Result<Vec<String>, Failure> {
    let until = (Instant::now() + within).min(run.deadline);
    let mut out = Vec::new();
    loop {
        match p.next_line(until) {
            Ok(Some(line)) => out.push(line.text),
            Ok(None) => return Ok(out),
            Err(Waited::TimedOut) => return Err(run.timed_out(what)),
        }
    }
}

fn exit_within(run: &Run, p: &mut Proc, within: Duration) -> Result<Exit, Failure> {
    let until = (Instant::now() + within).min(run.deadline);
    p.wait(until)
        .map_err(|_| run.timed_out(&format!("{} to exit", p.name)))
}

fn expect_exit_0(run: &Run, p: &mut Proc) -> Outcome {
    match exit_within(run, p, PATIENCE)? {
        Exit::Code(0) => Ok(()),
        other => Err(Failure::wrong(
            format!("{} to exit with status 0", p.name),
            format!("it ended with {other}"),
        )),
    }
}

fn write_line(p: &mut Proc, text: &str) -> Outcome {
    p.write_stdin(format!("{text}\n").as_bytes()).map_err(|e| {
        Failure::wrong(
            format!("{} to read its stdin", p.name),
            format!("the checker could not write to it ({e}): the program has exited or closed its stdin"),
        )
    })
}

fn word(rng: &mut impl Rng, min: usize, max: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let n = rng.random_range(min..=max);
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn reversed(text: &str) -> String {
    text.chars().rev().collect()
}

// ---------------------------------------------------------------------
// The string-reversing server and its client.

/// Waits for `server ready ...` and opens the request queue for writing.
fn server_ready(run: &Run, server: &mut Proc, requests: &str) -> Result<Mq, Failure> {
    let ready = match line_within(
        run,
        server,
        PATIENCE * 2,
        "a line `server ready ...` once the request queue exists",
    ) {
        Ok(line) => line,
        Err(f) => {
            if let Ok(Exit::Code(c)) = server.wait(Instant::now()) {
                return Err(Failure::wrong(
                    "the server to start and print `server ready ...`",
                    format!("it exited with status {c} first"),
                )
                .because("creating the request queue failed: see its error below. A queue from an earlier run that crashed may still exist: remove it (mq_unlink, ignoring ENOENT) before creating yours"));
            }
            return Err(f);
        }
    };
    if !ready.starts_with("server ready") {
        return Err(Failure::wrong(
            "a line `server ready ...`",
            format!("`{ready}`"),
        ));
    }
    open(requests, MQ_OFlag::O_WRONLY).map_err(|e| {
        Failure::wrong(
            format!("the request queue {requests} to exist once the server is ready"),
            format!("mq_open({requests}) says {e}"),
        )
        .because("the server creates the queue named `given::request_queue_name()` before it says it is ready")
    })
}

/// One client the checker plays: an id and its reply queue.
struct FakeClient {
    id: i32,
    name: String,
    queue: Mq,
}

fn fake_clients(run: &mut Run, names: &mut Names, n: usize) -> Result<Vec<FakeClient>, Failure> {
    let msg_max = limit("msg_max")? as usize;
    let mut ids: Vec<i32> = Vec::new();
    while ids.len() < n {
        let id = run.rng.random_range(100_000..4_000_000);
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut clients = Vec::new();
    for id in ids {
        let name = format!("{}reply-{id}", run.sandbox.ipc_prefix);
        names.0.push(name.clone());
        // Room for every reply of a round, should they all come here.
        let queue = create(
            &name,
            n.min(msg_max),
            MESSAGE_SIZE,
            MQ_OFlag::O_RDONLY | MQ_OFlag::O_NONBLOCK,
        )?;
        clients.push(FakeClient { id, name, queue });
    }
    Ok(clients)
}

/// Sends one request from each client, in a random order, then collects
/// the replies and checks each went to the client who asked.
fn one_round(run: &mut Run, requests: &Mq, request_name: &str, clients: &[FakeClient]) -> Outcome {
    let mut order: Vec<usize> = (0..clients.len()).collect();
    order.shuffle(&mut run.rng);
    let mut asked: HashMap<i32, String> = HashMap::new();
    for &i in &order {
        let text = word(&mut run.rng, 4, 30);
        let message = format!("{} {text}", clients[i].id);
        send(run, requests, request_name, message.as_bytes(), 0)?;
        asked.insert(clients[i].id, text);
    }
    let mut got: HashMap<i32, Vec<String>> = HashMap::new();
    let mut count = 0;
    run.poll(PATIENCE * 2, || {
        for c in clients {
            while let Some((m, _)) = try_receive(&c.queue) {
                got.entry(c.id)
                    .or_default()
                    .push(String::from_utf8_lossy(&m).into_owned());
                count += 1;
            }
        }
        (count >= clients.len()).then_some(())
    });
    // A reply in another client's queue first: that is the diagnosis.
    for c in clients {
        for m in got.get(&c.id).into_iter().flatten() {
            if let Some((other, text)) = asked
                .iter()
                .find(|(id, t)| **id != c.id && reversed(t) == *m)
            {
                return Err(Failure::wrong(
                    format!("the reply to client {other}'s `{text}` in client {other}'s queue"),
                    format!("`{m}` arrived in the queue of client {} ({})", c.id, c.name),
                )
                .because(
                    "the server sent a reply to the wrong client: every reply must go to the queue named after \
                     the pid in *that* request (`reply_queue_name(pid)`), opened for that reply. One shared reply \
                     queue, or the queue of the first client kept open, mixes up the clients",
                ));
            }
        }
    }
    for c in clients {
        let want = reversed(&asked[&c.id]);
        match got.get(&c.id).map(Vec::as_slice) {
            Some([m]) if *m == want => {}
            Some(ms) if !ms.is_empty() => {
                return Err(Failure::wrong(
                    format!("one reply `{want}` to client {}'s `{}`", c.id, asked[&c.id]),
                    format!("its queue got {}", ms.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")),
                )
                .because("the reply is the request's text (after the pid and one space) reversed, by characters"));
            }
            _ => {
                return Err(stalled(
                    run,
                    format!("a reply to client {}'s `{}` in its queue {}", c.id, asked[&c.id], c.name),
                    format!("nothing arrived there within {} s", (PATIENCE * 2).as_secs()),
                )
                .because("the server must answer each request on the queue `reply_queue_name(pid)`, pid being the number before the first space of the request"));
            }
        }
    }
    Ok(())
}

fn reverse_server(run: &mut Run) -> Outcome {
    let request_name = format!("{}requests", run.sandbox.ipc_prefix);
    let mut names = Names(vec![request_name.clone()]);
    let mut server = run.spawn("server", &[])?;
    let requests = server_ready(run, &mut server, &request_name)?;
    let n = run.rng.random_range(3..=5);
    let clients = fake_clients(run, &mut names, n)?;
    for _ in 0..3 {
        one_round(run, &requests, &request_name, &clients)?;
    }
    send(
        run,
        &requests,
        &request_name,
        format!("{} end", clients[0].id).as_bytes(),
        0,
    )?;
    expect_exit_0(run, &mut server)
}

fn server_end_unlinks(run: &mut Run) -> Outcome {
    let request_name = format!("{}requests", run.sandbox.ipc_prefix);
    let mut names = Names(vec![request_name.clone()]);
    // What a crashed server leaves: its queue, with a request in it.
    {
        let stale = create(&request_name, 4, MESSAGE_SIZE, MQ_OFlag::O_WRONLY)?;
        let _ = mq_send(stale.get(), b"1 stale request", 0);
    }
    let mut server = run.spawn("server", &[])?;
    let requests = server_ready(run, &mut server, &request_name)?;
    let clients = fake_clients(run, &mut names, 1)?;
    one_round(run, &requests, &request_name, &clients)?;
    let client = &clients[0];
    send(
        run,
        &requests,
        &request_name,
        format!("{} end", client.id).as_bytes(),
        0,
    )?;
    drop(requests);
    match exit_within(run, &mut server, PATIENCE)? {
        Exit::Code(0) => {}
        other => {
            return Err(Failure::wrong(
                "the server to stop with status 0 at `end`",
                format!("it ended with {other}"),
            ));
        }
    }
    if let Some((m, _)) = try_receive(&client.queue) {
        return Err(Failure::wrong(
            "no reply to `end`",
            format!("the client's queue got `{}`", String::from_utf8_lossy(&m)),
        )
        .because("`end` stops the server; it is not a word to reverse"));
    }
    let mine: Vec<String> = names
        .0
        .iter()
        .filter(|n| **n != client.name)
        .cloned()
        .collect();
    expect_nothing_left(
        run,
        &mine,
        "the server",
        "the server removes its request queue (mq_unlink) when it stops, e.g. in `impl Drop for Server`",
    )
}

fn reverse_client(run: &mut Run) -> Outcome {
    let request_name = format!("{}requests", run.sandbox.ipc_prefix);
    let mut names = Names(vec![request_name.clone()]);
    let requests = create(
        &request_name,
        8,
        MESSAGE_SIZE,
        MQ_OFlag::O_RDONLY | MQ_OFlag::O_NONBLOCK,
    )?;
    let mut client = run.spawn("client", &[])?;
    let pid = client.pid;
    let reply_name = format!("{}reply-{pid}", run.sandbox.ipc_prefix);
    names.0.push(reply_name.clone());
    let first = line_within(
        run,
        &mut client,
        PATIENCE * 2,
        "a line `client pid=P replies=NAME`",
    )?;
    if field_num(&first, "pid") != Some(pid as i64) {
        return Err(Failure::wrong(
            format!("a line `client pid={pid} replies={reply_name}`"),
            format!("`{first}`"),
        ));
    }
    if !exists(&reply_name) {
        return Err(Failure::wrong(
            format!("the client's reply queue {reply_name} to exist before it asks anything"),
            "there is no such queue".to_string(),
        )
        .because("the client creates its reply queue, named `reply_queue_name(its pid)`, in `Client::connect`"));
    }
    let rounds = run.rng.random_range(3..=5);
    for _ in 0..rounds {
        let text = format!(
            "{} {}",
            word(&mut run.rng, 3, 12),
            word(&mut run.rng, 3, 12)
        );
        write_line(&mut client, &text)?;
        let Some((m, _)) = run.poll(PATIENCE * 2, || try_receive(&requests)) else {
            return Err(stalled(
                run,
                format!("the request for `{text}` in the queue {request_name}"),
                format!("nothing arrived within {} s", (PATIENCE * 2).as_secs()),
            ));
        };
        let m = String::from_utf8_lossy(&m).into_owned();
        if m != format!("{pid} {text}") {
            return Err(
                Failure::wrong(format!("the request `{pid} {text}`"), format!("`{m}`"))
                    .because("a request is the client's own pid, one space, and the line"),
            );
        }
        // Not the reversal: the client must print what the server said.
        let answer = word(&mut run.rng, 6, 20);
        let replies = open(&reply_name, MQ_OFlag::O_WRONLY).map_err(|e| {
            Failure::wrong(
                format!("the client's reply queue {reply_name} while it waits"),
                format!("mq_open says {e}"),
            )
        })?;
        send(run, &replies, &reply_name, answer.as_bytes(), 0)?;
        let line = line_within(
            run,
            &mut client,
            PATIENCE * 2,
            &format!("a line `reply: {answer}`"),
        )?;
        if line != format!("reply: {answer}") {
            return Err(Failure::wrong(format!("`reply: {answer}`"), format!("`{line}`"))
                .because("the client prints what came back in its reply queue (the checker, as the server, answered with a word of its own)"));
        }
    }
    client.close_stdin();
    rest_within(
        run,
        &mut client,
        PATIENCE,
        "the client to finish once its input ends",
    )?;
    expect_exit_0(run, &mut client)?;
    let reply_only = vec![reply_name];
    expect_nothing_left(
        run,
        &reply_only,
        "the client",
        "the client removes its reply queue (mq_unlink) when it is done, e.g. in `impl Drop for Client`",
    )
}

// ---------------------------------------------------------------------
// Priorities, attributes and limits.

fn priorities_overtake(run: &mut Run) -> Outcome {
    let capacity = (limit("msg_max")? as usize).min(10);
    if capacity < 3 {
        return Err(Failure::internal("msg_max is below 3 on this system"));
    }
    let name = format!("{}jobs", run.sandbox.ipc_prefix);
    let _names = Names(vec![name.clone()]);
    let mut prio = run.spawn("prio", &[capacity.to_string()])?;
    let ready = line_within(run, &mut prio, PATIENCE * 2, "a line `ready queue=NAME`")?;
    if fields(&ready).get("queue") != Some(&name.as_str()) {
        return Err(Failure::wrong(
            format!("`ready queue={name}`"),
            format!("`{ready}`"),
        ));
    }
    let jobs = open(&name, MQ_OFlag::O_WRONLY).map_err(|e| {
        Failure::wrong(
            format!("the queue {name} to exist"),
            format!("mq_open says {e}"),
        )
    })?;
    // Mixed priorities, the first job among the lowest, so that order
    // of arrival and order of priority differ.
    let levels = [0u32, 1, 5, 9, 30];
    let mut sent: Vec<(u32, String)> = Vec::new();
    for i in 0..capacity {
        let p = if i == 0 {
            0
        } else {
            levels[run.rng.random_range(0..levels.len())]
        };
        sent.push((p, format!("job-{i}-{}", word(&mut run.rng, 4, 10))));
    }
    if sent.iter().all(|(p, _)| *p == 0) {
        sent[capacity - 1].0 = 9;
    }
    for (p, text) in &sent {
        send(run, &jobs, &name, text.as_bytes(), *p)?;
    }
    let held = mq_getattr(jobs.get()).map(|a| a.curmsgs()).unwrap_or(-1);
    if held != capacity as i64 {
        return Err(Failure::wrong(
            format!("all {capacity} jobs to wait in the queue while `prio` is held at its gate"),
            format!("the queue holds {held}"),
        ));
    }
    prio.close_stdin();
    let lines = rest_within(run, &mut prio, PATIENCE, "the jobs, one line each")?;
    expect_exit_0(run, &mut prio)?;
    let got: Vec<(u32, String)> = lines
        .iter()
        .filter(|l| l.starts_with("priority="))
        .filter_map(|l| {
            let (p, m) = l.strip_prefix("priority=")?.split_once(" message=")?;
            Some((p.parse().ok()?, m.to_string()))
        })
        .collect();
    let mut expected = sent.clone();
    // Stable: within one priority, the order sent.
    expected.sort_by_key(|job| std::cmp::Reverse(job.0));
    if got != expected {
        let show = |v: &[(u32, String)]| {
            v.iter()
                .map(|(p, m)| format!("{m}@{p}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        return Err(Failure::wrong(
            format!("the jobs highest priority first: {}", show(&expected)),
            if got.is_empty() {
                "no `priority=P message=M` line".to_string()
            } else {
                show(&got)
            },
        )
        .because("mq_receive hands out the oldest message of the highest priority; keep the messages in the order received, with the priority it reports"));
    }
    drop(jobs);
    expect_nothing_left(
        run,
        std::slice::from_ref(&name),
        "`prio`",
        "`prio` removes the queue it made",
    )
}

fn expect_field(line: &str, key: &str, want: i64) -> Outcome {
    match field_num(line, key) {
        Some(v) if v == want => Ok(()),
        _ => Err(Failure::wrong(format!("{key}={want}"), format!("`{line}`"))),
    }
}

fn queue_attributes(run: &mut Run) -> Outcome {
    let msg_max = limit("msg_max")?;
    let msgsize_max = limit("msgsize_max")?;
    let queues_max = limit("queues_max")?;
    let capacity = run.rng.random_range(2..=msg_max.clamp(2, 10));
    let size = run.rng.random_range(64..=msgsize_max.clamp(64, 1024));
    let name = format!("{}attributes", run.sandbox.ipc_prefix);
    let _names = Names(vec![name.clone()]);
    let mut p = run.spawn("mqattr", &[capacity.to_string(), size.to_string()])?;
    let limits = line_within(
        run,
        &mut p,
        PATIENCE * 2,
        "a line `limits msg_max=M msgsize_max=S queues_max=Q`",
    )?;
    expect_field(&limits, "msg_max", msg_max)?;
    expect_field(&limits, "msgsize_max", msgsize_max)?;
    expect_field(&limits, "queues_max", queues_max)?;
    let created = line_within(
        run,
        &mut p,
        PATIENCE,
        "a line `created NAME maxmsg=N msgsize=S curmsgs=0`",
    )?;
    expect_field(&created, "maxmsg", capacity)?;
    expect_field(&created, "msgsize", size)?;
    let full = line_within(run, &mut p, PATIENCE, "a line `full after N messages`")?;
    let n = full
        .strip_prefix("full after ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<i64>().ok());
    if n != Some(capacity) {
        return Err(Failure::wrong(
            format!("`full after {capacity} messages ...`"),
            format!("`{full}`"),
        )
        .because(
            "with O_NONBLOCK, mq_send fails with EAGAIN exactly when the queue holds its capacity",
        ));
    }
    // See for ourselves, while the program holds the queue.
    let q = open(&name, MQ_OFlag::O_RDONLY).map_err(|e| {
        Failure::wrong(
            format!("the queue {name} to exist while `mqattr` waits"),
            format!("mq_open says {e}"),
        )
    })?;
    let attr = mq_getattr(q.get()).map_err(|e| Failure::internal(format!("mq_getattr: {e}")))?;
    let seen = (
        attr.maxmsg() as i64,
        attr.msgsize() as i64,
        attr.curmsgs() as i64,
    );
    if seen != (capacity, size, capacity) {
        return Err(Failure::wrong(
            format!(
                "the queue to have maxmsg={capacity} msgsize={size} and hold {capacity} messages"
            ),
            format!(
                "mq_getattr says maxmsg={} msgsize={} curmsgs={}",
                seen.0, seen.1, seen.2
            ),
        ));
    }
    drop(q);
    p.close_stdin();
    rest_within(
        run,
        &mut p,
        PATIENCE,
        "`mqattr` to finish once its input ends",
    )?;
    expect_exit_0(run, &mut p)?;
    expect_nothing_left(
        run,
        std::slice::from_ref(&name),
        "`mqattr`",
        "`mqattr` removes its queue",
    )
}

/// Whether the checker itself may create a queue with these attributes
/// (a process with CAP_SYS_RESOURCE is not bound by msg_max).
fn allowed(run: &Run, capacity: i64, size: i64) -> bool {
    let name = format!("{}probe", run.sandbox.ipc_prefix);
    let attr = MqAttr::new(0, capacity as _, size as _, 0);
    match mq_open(
        name.as_str(),
        MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR,
        Mode::S_IRUSR | Mode::S_IWUSR,
        Some(&attr),
    ) {
        Ok(q) => {
            let _ = mq_close(q);
            let _ = mq_unlink(name.as_str());
            true
        }
        Err(_) => false,
    }
}

fn limit_is_an_error(run: &mut Run) -> Outcome {
    let msg_max = limit("msg_max")?;
    let msgsize_max = limit("msgsize_max")?;
    let name = format!("{}attributes", run.sandbox.ipc_prefix);
    let _names = Names(vec![name.clone()]);
    let mut capacity = msg_max + run.rng.random_range(1..=20);
    if allowed(run, capacity, 128) {
        // Privileged: only the kernel's hard ceiling (65536) applies.
        capacity = 70_000;
    }
    let mut size = msgsize_max + run.rng.random_range(1..=1000);
    if allowed(run, 2, size) {
        size = 20_000_000;
    }
    let cases = [
        (
            capacity.to_string(),
            "128".to_string(),
            "msg_max",
            msg_max,
            format!("{capacity} messages"),
        ),
        (
            "2".to_string(),
            size.to_string(),
            "msgsize_max",
            msgsize_max,
            format!("messages of {size} bytes"),
        ),
    ];
    for (cap, sz, limit_name, value, asked) in cases {
        let mut p = run.spawn("mqattr", &[cap.clone(), sz.clone()])?;
        p.close_stdin();
        let status = exit_within(run, &mut p, PATIENCE)?;
        let until = (Instant::now() + PATIENCE).min(run.deadline);
        let err = p.captures().1.text_at_end(until);
        let err = err.trim();
        if status == Exit::Code(0) {
            return Err(Failure::wrong(
                format!("`mqattr {cap} {sz}` to fail: {asked} is above {limit_name} ({value})"),
                "it exited with status 0".to_string(),
            ));
        }
        let words = err.contains(limit_name) && err.contains(&value.to_string());
        if !words {
            return Err(Failure::wrong(
                format!("an error that names the limit {limit_name} and its value {value}"),
                format!("it ended with {status}, saying {:?}", err.lines().take(3).collect::<Vec<_>>().join(" | ")),
            )
            .because(format!(
                "the kernel only says EINVAL (\"Invalid argument\"): read /proc/sys/fs/mqueue/{limit_name} \
                 (`given::mq_limit`) and say which limit the request broke, with its value"
            )));
        }
    }
    expect_nothing_left(
        run,
        std::slice::from_ref(&name),
        "`mqattr`",
        "a queue that could not be created must not exist",
    )
}

// ---------------------------------------------------------------------
// The ring buffer.

fn fnv(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

/// Writes `in-i` for each producer; returns every message sent.
fn write_inputs(
    run: &mut Run,
    producers: usize,
    per: (usize, usize),
) -> Result<Vec<String>, Failure> {
    let mut all = Vec::new();
    for i in 0..producers {
        let n = run.rng.random_range(per.0..=per.1);
        let mut text = String::with_capacity(n * 64);
        for k in 0..n {
            let body = format!("p{i}-{k}-{}", word(&mut run.rng, 8, 48));
            let line = format!("{body}-{:08x}", fnv(&body));
            text.push_str(&line);
            text.push('\n');
            all.push(line);
        }
        std::fs::write(run.sandbox.tmp.join(format!("in-{i}")), text)
            .map_err(|e| Failure::internal(format!("writing in-{i}: {e}")))?;
    }
    Ok(all)
}

/// Reads `producer I pid=P` lines and the gate line; returns the pids.
fn producers_started(run: &Run, ring: &mut Proc, producers: usize) -> Result<Vec<i32>, Failure> {
    let mut pids = Vec::new();
    for i in 0..producers {
        let line = line_within(
            run,
            ring,
            PATIENCE * 2,
            &format!("a line `producer {i} pid=P`"),
        )?;
        let Some(pid) = field_num(&line, "pid") else {
            return Err(Failure::wrong(
                format!("`producer {i} pid=P`"),
                format!("`{line}`"),
            ));
        };
        let pid = pid as i32;
        match procfs::stat(pid) {
            Some(s) if s.ppid == ring.pid => pids.push(pid),
            _ => {
                return Err(Failure::wrong(
                    format!(
                        "producer {i} (pid {pid}) to be a child of `ring` ({})",
                        ring.pid
                    ),
                    "it is not".to_string(),
                ));
            }
        }
    }
    let gate = line_within(run, ring, PATIENCE, "the line `gate: ...`")?;
    if !gate.starts_with("gate") {
        return Err(Failure::wrong("`gate: ...`", format!("`{gate}`")));
    }
    Ok(pids)
}

/// The CPUs the checker may run on.
fn cpus() -> Vec<usize> {
    let Ok(set) = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) else {
        return Vec::new();
    };
    (0..nix::sched::CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect()
}

/// Puts the producers on different CPUs, so that they really run at the
/// same time: what a race needs to show.
fn spread(pids: &[i32]) {
    let cpus = cpus();
    if cpus.len() < 2 {
        return;
    }
    for (i, &pid) in pids.iter().enumerate() {
        let mut set = nix::sched::CpuSet::new();
        if set.set(cpus[i % cpus.len()]).is_ok() {
            let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(pid), &set);
        }
    }
}

fn output_bytes(run: &Run, consumers: usize) -> u64 {
    (0..consumers)
        .filter_map(|j| std::fs::metadata(run.sandbox.tmp.join(format!("out-{j}"))).ok())
        .map(|m| m.len())
        .sum()
}

/// Waits for `ring` to exit while its consumers make progress; gives up
/// when nothing new was written for a while. `None` if it stalled.
fn wait_with_progress(run: &Run, ring: &mut Proc, consumers: usize) -> Option<Exit> {
    const STALL: Duration = Duration::from_secs(8);
    let mut last = output_bytes(run, consumers);
    let mut since = Instant::now();
    loop {
        let step = (Instant::now() + Duration::from_millis(200)).min(run.deadline);
        if let Ok(exit) = ring.wait(step) {
            return Some(exit);
        }
        let now = output_bytes(run, consumers);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= STALL || Instant::now() >= run.deadline {
            return None;
        }
    }
}

/// Checks the consumers' files against what was sent: each message once,
/// intact.
fn verify_set(run: &Run, sent: &[String], consumers: usize) -> Outcome {
    let mut count: HashMap<&str, u32> = sent.iter().map(|m| (m.as_str(), 0)).collect();
    let mut corrupted = Vec::new();
    let mut texts = Vec::new();
    for j in 0..consumers {
        texts.push(
            std::fs::read_to_string(run.sandbox.tmp.join(format!("out-{j}"))).unwrap_or_default(),
        );
    }
    for line in texts.iter().flat_map(|t| t.lines()) {
        match count.get_mut(line) {
            Some(c) => *c += 1,
            None => corrupted.push(line.to_string()),
        }
    }
    let lost: Vec<&str> = sent
        .iter()
        .map(String::as_str)
        .filter(|m| count[m] == 0)
        .collect();
    let twice: Vec<&str> = sent
        .iter()
        .map(String::as_str)
        .filter(|m| count[m] > 1)
        .collect();
    if lost.is_empty() && twice.is_empty() && corrupted.is_empty() {
        return Ok(());
    }
    let mut parts = Vec::new();
    if !lost.is_empty() {
        parts.push(format!("{} never arrived (e.g. `{}`)", lost.len(), lost[0]));
    }
    if !twice.is_empty() {
        parts.push(format!(
            "{} arrived more than once (e.g. `{}`)",
            twice.len(),
            twice[0]
        ));
    }
    if !corrupted.is_empty() {
        let torn = corrupted.iter().filter(|l| {
            l.rsplit_once('-')
                .is_some_and(|(body, sum)| format!("{:08x}", fnv(body)) != *sum)
        });
        parts.push(format!(
            "{} lines are no message sent ({} with a wrong checksum; e.g. `{}`)",
            corrupted.len(),
            torn.count(),
            corrupted[0]
        ));
    }
    let why = if !lost.is_empty() && (!twice.is_empty() || !corrupted.is_empty()) {
        "two producers wrote into the same slot (one message overwritten, lost) and the consumers then read \
         a slot nobody filled again: reading `head`, filling its slot and moving `head` must be one step \
         that one producer at a time takes. Hold a lock around it (a semaphore of 1), and likewise for `tail`"
    } else if !lost.is_empty() {
        "messages vanished: a full ring must make producers wait for a free slot (a semaphore counting \
         them), never overwrite one nobody has read"
    } else if !twice.is_empty() {
        "a slot was read twice: reading `tail`, copying its slot and moving `tail` must be one step that \
         one consumer at a time takes"
    } else {
        "a slot was read while being written: a consumer may read a slot only after its producer posted `used`"
    };
    Err(Failure::wrong(
        format!(
            "each of the {} messages the producers sent, exactly once and intact",
            sent.len()
        ),
        parts.join("; "),
    )
    .because(why))
}

fn ring_every_message_once(run: &mut Run) -> Outcome {
    // Three runs of `ring` rather than one long one: how the scheduler
    // places the processes is decided early in a run, and now and then it
    // keeps the producers from ever running at the same moment.
    for _ in 0..3 {
        ring_round(run)?;
    }
    Ok(())
}

/// One run of `ring` with some 20 000 messages.
fn ring_round(run: &mut Run) -> Outcome {
    // Four producers, two on each of two CPUs: enough that some of them
    // really run at the same moment, even on a busy machine.
    let producers = 4;
    let consumers = run.rng.random_range(2..=3);
    let capacity = run.rng.random_range(8..=32);
    let per = 20_000 / producers;
    let sent = write_inputs(run, producers, (per - 200, per + 200))?;
    let args = [producers, consumers, capacity].map(|n| n.to_string());
    let mut ring = run.spawn("ring", &args)?;
    let pids = producers_started(run, &mut ring, producers)?;
    spread(&pids);
    ring.close_stdin();
    let exit = wait_with_progress(run, &mut ring, consumers);
    verify_set(run, &sent, consumers)?;
    match exit {
        Some(Exit::Code(0)) => Ok(()),
        Some(other) => Err(Failure::wrong(
            "`ring` to exit with status 0",
            format!("it ended with {other}"),
        )),
        None => Err(run.timed_out("`ring` to finish: its consumers stopped making progress")),
    }
}

/// The producers' state: blocked in futex, exited, or neither.
enum Producers {
    AllBlocked,
    Finished(usize, i32),
    Busy(Vec<String>),
}

fn producers_state(pids: &[i32]) -> Producers {
    let mut busy = Vec::new();
    for (i, &pid) in pids.iter().enumerate() {
        match procfs::stat(pid) {
            None => return Producers::Finished(i, pid),
            Some(s) if s.is_zombie() => return Producers::Finished(i, pid),
            Some(s) => {
                let call = procfs::blocked(pid)
                    .syscall
                    .and_then(|(nr, _)| syscall_name(nr));
                if s.state != 'S' || call != Some("futex") {
                    busy.push(format!(
                        "producer {i} (pid {pid}) is in state {} ({})",
                        s.state,
                        call.map(|c| format!("in {c}()"))
                            .unwrap_or_else(|| "running".into())
                    ));
                }
            }
        }
    }
    if busy.is_empty() {
        Producers::AllBlocked
    } else {
        Producers::Busy(busy)
    }
}

fn ring_full_blocks_producers(run: &mut Run) -> Outcome {
    let producers = run.rng.random_range(2..=3);
    let consumers = 2;
    let capacity = run.rng.random_range(2..=4);
    let sent = write_inputs(run, producers, (20, 40))?;
    let args = [producers, consumers, capacity].map(|n| n.to_string());
    let mut ring = run.spawn("ring", &args)?;
    let pids = producers_started(run, &mut ring, producers)?;
    // Twice in a row, some time apart: all blocked, none gone.
    let mut last = Producers::Busy(vec!["not looked at yet".into()]);
    let mut settled = 0;
    let until = Instant::now() + PATIENCE * 2;
    while Instant::now() < until.min(run.deadline) {
        last = producers_state(&pids);
        match last {
            Producers::AllBlocked => {
                settled += 1;
                if settled == 2 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(150));
            }
            Producers::Finished(..) => break,
            Producers::Busy(_) => {
                settled = 0;
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    match last {
        Producers::AllBlocked => {}
        Producers::Finished(i, pid) => {
            return Err(Failure::wrong(
                format!("producer {i} (pid {pid}) to wait: the ring holds {capacity} messages and no consumer runs yet"),
                format!("it finished all its messages ({} in all were sent) while nobody took any", sent.len()),
            )
            .because(
                "the ring overwrote (or dropped) messages instead of making the producer wait: `push` must take a \
                 permit of the semaphore counting free slots (sem_wait blocks at 0) before writing, and `pop` gives it back",
            ));
        }
        Producers::Busy(states) => {
            return Err(stalled(
                run,
                format!("every producer blocked in a semaphore wait (futex) on the full ring ({capacity} slots)"),
                states.join("; "),
            )
            .because("a producer that loops until a slot frees burns a CPU; wait on a semaphore instead"));
        }
    }
    ring.close_stdin();
    let exit = wait_with_progress(run, &mut ring, consumers);
    verify_set(run, &sent, consumers)?;
    match exit {
        Some(Exit::Code(0)) => Ok(()),
        Some(other) => Err(Failure::wrong(
            "`ring` to exit with status 0",
            format!("it ended with {other}"),
        )),
        None => Err(run.timed_out("`ring` to finish once the consumers run")),
    }
}
