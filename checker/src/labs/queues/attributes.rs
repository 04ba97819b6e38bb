//! Priorities, attributes and limits.

use super::*;

// ---------------------------------------------------------------------
// Priorities, attributes and limits.

pub(super) fn priorities_overtake(run: &mut Run) -> Outcome {
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

pub(super) fn expect_field(line: &str, key: &str, want: i64) -> Outcome {
    match field_num(line, key) {
        Some(v) if v == want => Ok(()),
        _ => Err(Failure::wrong(format!("{key}={want}"), format!("`{line}`"))),
    }
}

pub(super) fn queue_attributes(run: &mut Run) -> Outcome {
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
pub(super) fn allowed(run: &Run, capacity: i64, size: i64) -> bool {
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

pub(super) fn limit_is_an_error(run: &mut Run) -> Outcome {
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
