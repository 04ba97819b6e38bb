//! A child at the other end of one pipe: the message, bytes of any
//! value, more than a pipe holds.

use crate::pid::Pid;
use rand::Rng;

use super::ends::with_advice;
use super::{
    compare_files, exit_0, expect_child, expect_line_in, line, random_bytes, rest, words,
    write_line,
};
use crate::scenario::{Failure, Outcome, Run, quote_lines};

pub(super) fn parent_to_child(run: &mut Run) -> Outcome {
    let mut p = run.spawn("hello", &[])?;
    let program = p.pid;
    let first = line(run, &mut p, "a line `parent pid=P child=C`")?;
    let (Some(pid), Some(child)) = (Pid::field(&first, "pid"), Pid::field(&first, "child")) else {
        return Err(Failure::wrong(
            "a line `parent pid=P child=C`",
            format!("`{first}`"),
        ));
    };
    if pid != program {
        return Err(Failure::wrong(
            format!("the parent's pid={program}"),
            format!("`{first}`"),
        ));
    }
    expect_child(child, program, "the child")?;

    // The message exists only now, after the fork: it can reach the child
    // through the pipe and no other way.
    let lines: Vec<String> = (0..run.rng.random_range(1..=3))
        .map(|_| {
            let n = run.rng.random_range(2..=6);
            words(&mut run.rng, n)
        })
        .collect();
    let message = lines.join("\n");
    write_line(&mut p, &message)?;
    p.close_stdin();

    let rest = rest(run, &mut p, "the child to print the message, and the parent to finish")
        .map_err(|f| {
            with_advice(
                f,
                "The child reads until end of file, which comes only once every write end of the pipe is closed: the parent's after writing, and the child's own copy right after fork",
            )
        })?;
    let header = format!(
        "child pid={child} ppid={program} read {} bytes:",
        message.len() + 1
    );
    let Some(at) = rest
        .iter()
        .position(|l| l.starts_with(&format!("child pid={child} ")))
    else {
        return Err(Failure::wrong(
            format!("the child to print `{header}` and the message"),
            format!("the program printed {}", quote_lines(&rest)),
        ));
    };
    if rest[at] != header {
        return Err(Failure::wrong(
            format!("`{header}`"),
            format!("`{}`", rest[at]),
        ));
    }
    let printed: Vec<String> = rest
        .iter()
        .skip(at + 1)
        .take(lines.len())
        .cloned()
        .collect();
    if printed != lines {
        return Err(Failure::wrong(
            format!("the child to print the message {}", quote_lines(&lines)),
            format!("it printed {}", quote_lines(&printed)),
        ));
    }
    expect_line_in(&rest, &format!("parent: child {child} exited with 0"))?;
    exit_0(run, &mut p)
}

pub(super) fn bytes_of_any_value(run: &mut Run) -> Outcome {
    let len = run.rng.random_range(100_000..200_000);
    let data = random_bytes(&mut run.rng, len);
    let out = run.sandbox.tmp.join("relayed.bin");
    let mut p = run.spawn("relay", &["relayed.bin".to_string()])?;
    let program = p.pid;
    let first = line(run, &mut p, "a line `parent pid=P child=C`")?;
    let Some(child) = Pid::field(&first, "child") else {
        return Err(Failure::wrong(
            "a line `parent pid=P child=C`",
            format!("`{first}`"),
        ));
    };
    expect_child(child, program, "the child")?;
    p.feed_stdin(data.clone())?;
    let rest = rest(run, &mut p, "the bytes to go through and the program to finish")
        .map_err(|f| {
            with_advice(
                f,
                "Copy until the input ends, then close the write end; the child copies until end of file",
            )
        })?;
    expect_line_in(
        &rest,
        &format!("child pid={child} wrote {len} bytes to relayed.bin"),
    )?;
    expect_line_in(
        &rest,
        &format!("parent: sent {len} bytes, child {child} exited with 0"),
    )?;
    exit_0(run, &mut p)?;
    compare_files(&data, &out, "the child")
}

pub(super) fn more_than_a_pipe_holds(run: &mut Run) -> Outcome {
    let len = run.rng.random_range((1 << 20)..(1 << 20) + 100_000);
    let data = random_bytes(&mut run.rng, len);
    std::fs::write(run.sandbox.tmp.join("in.bin"), &data).map_err(Failure::internal)?;
    let mut p = run.spawn("gather", &["in.bin".to_string(), "out.bin".to_string()])?;
    let program = p.pid;
    let rest = rest(run, &mut p, "the parent to collect the child's 1 MiB and finish")
        .map_err(|f| {
            with_advice(
                f,
                "The child blocked in write() is waiting for the parent to read. If the parent waits for the child to exit before it reads (a wait4() above), neither ever moves: in `collect`, read everything first, then wait",
            )
        })?;
    let Some(child_line) = rest.iter().find(|l| l.starts_with("child pid=")) else {
        return Err(Failure::wrong(
            "a line `child pid=C ppid=P sending in.bin`",
            format!("the program printed {}", quote_lines(&rest)),
        ));
    };
    let child = Pid::field(child_line, "pid").unwrap_or(Pid::from_raw(-1));
    if child == program || Pid::field(child_line, "ppid") != Some(program) {
        return Err(Failure::wrong(
            format!("the sender to be a child of the program (pid {program})"),
            format!("`{child_line}`"),
        ));
    }
    expect_line_in(
        &rest,
        &format!("parent pid={program} got {len} bytes; the child exited with 0"),
    )?;
    exit_0(run, &mut p)?;
    compare_files(&data, &run.sandbox.tmp.join("out.bin"), "the parent")
}
