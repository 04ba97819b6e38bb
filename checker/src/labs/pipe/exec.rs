//! pipe, dup2 and exec: `ls -l | wc -l`, what exec'd programs inherit,
//! SIGPIPE after exec.

use crate::pid::Pid;
use std::path::Path;

use rand::Rng;

use super::ends::with_advice;
use super::{PATIENCE, exit_0, expect_line_in, rest, timed_out, words};
use crate::diagnose::syscall_name;
use crate::procfs;
use crate::sandbox::checker_pid;
use crate::scenario::{Failure, Outcome, Run, quote_lines};

fn shell_answer(dir: &Path, command: &str) -> Result<String, Failure> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .output()
        .map_err(|e| Failure::internal(format!("running sh -c '{command}': {e}")))?;
    if !out.status.success() {
        return Err(Failure::internal(format!(
            "sh -c '{command}' failed: {}",
            out.status
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub(super) fn ls_wc_pipeline(run: &mut Run) -> Outcome {
    let dir = run.sandbox.tmp.join("listing");
    std::fs::create_dir(&dir).map_err(Failure::internal)?;
    let n = run.rng.random_range(3..60);
    for i in 0..n {
        let size = run.rng.random_range(0..3000);
        std::fs::write(dir.join(format!("file-{i:03}")), vec![b'x'; size])
            .map_err(Failure::internal)?;
    }
    let truth = shell_answer(&run.sandbox.tmp, "ls -l listing | wc -l")?;
    let args: Vec<String> = ["ls", "-l", "listing", "|", "wc", "-l"]
        .map(String::from)
        .to_vec();
    let mut p = run.spawn("count", &args)?;
    let rest = rest(run, &mut p, "`wc -l` to print its count and the program to finish")
        .map_err(|f| {
            with_advice(
                f,
                "`wc` counts until end of file. The parent, and each child after its dup2, must close the pipe's original descriptors",
            )
        })?;
    let Some(first) = rest.first() else {
        return Err(Failure::wrong(
            format!("`wc -l` to print {truth}"),
            "nothing",
        ));
    };
    if first.trim() != truth {
        return Err(Failure::wrong(
            format!("`{truth}`, what the shell's `ls -l listing | wc -l` prints ({n} files)"),
            format!("the first line was `{first}`"),
        ));
    }
    expect_line_in(&rest, "left: ls exited with 0")?;
    expect_line_in(&rest, "right: wc exited with 0")?;
    exit_0(run, &mut p)
}

pub(super) fn exec_inherits_only_stdio(run: &mut Run) -> Outcome {
    let args: Vec<String> = ["cat", "|", "wc", "-l"].map(String::from).to_vec();
    let mut p = run.spawn("count", &args)?;
    let program = p.pid;
    // Wait until both children have exec'd and wait in read(): cat on the
    // checker's pipe (the program's stdin), wc on the pipe from cat.
    let found = run.poll(PATIENCE, || {
        if procfs::stat(program).is_none_or(|s| s.is_zombie()) {
            return Some(None);
        }
        let kids: Vec<procfs::Stat> = procfs::descendants(checker_pid())
            .into_iter()
            .filter(|s| s.ppid == program)
            .collect();
        let find = |name: &str| {
            kids.iter()
                .find(|s| s.comm == name)
                .filter(|s| {
                    procfs::blocked(s.pid)
                        .syscall
                        .is_some_and(|(nr, _)| syscall_name(nr) == Some("read"))
                })
                .map(|s| s.pid)
        };
        Some(Some((find("cat")?, find("wc")?)))
    });
    if found == Some(None) {
        return Err(Failure::wrong(
            "two children running `cat` and `wc`, both waiting for input",
            "the program exited first",
        ));
    }
    let Some(Some((cat, wc))) = found else {
        let kids: Vec<String> = procfs::descendants(checker_pid())
            .iter()
            .filter(|s| s.ppid == program)
            .map(|s| format!("{} ({})", s.pid, s.comm))
            .collect();
        return Err(with_advice(
            timed_out(
                run,
                program,
                "two children running `cat` and `wc`, both waiting for input",
            ),
            &format!(
                "the program's children: {}",
                if kids.is_empty() {
                    "none".into()
                } else {
                    kids.join(", ")
                }
            ),
        ));
    };

    let fd_of = |pid: Pid, fd: i32| procfs::fd_target(pid, fd).unwrap_or_default();
    for (pid, name) in [(cat, "cat"), (wc, "wc")] {
        let extra: Vec<String> = procfs::fds(pid)
            .into_iter()
            .filter(|(fd, _)| *fd > 2)
            .map(|(fd, t)| format!("{fd} ({t})"))
            .collect();
        if !extra.is_empty() {
            return Err(Failure::wrong(
                format!("`{name}` (pid {pid}) to hold fds 0, 1 and 2 only"),
                format!("it also holds fd {}", extra.join(", ")),
            )
            .because(format!(
                "`{name}` inherited descriptors beyond 0, 1 and 2: exec keeps every descriptor that is not close-on-exec. \
                 After dup2, close the pipe's original read and write ends in the child before execvp (an OwnedFd alive at exec is never dropped)"
            )));
        }
    }
    let pipe_between = fd_of(cat, 1);
    if !pipe_between.starts_with("pipe:") || pipe_between != fd_of(wc, 0) {
        return Err(Failure::wrong(
            "cat's fd 1 and wc's fd 0 to be the two ends of one pipe",
            format!("cat's fd 1 is {}, wc's fd 0 is {}", pipe_between, fd_of(wc, 0)),
        )
        .because("dup2 the write end onto fd 1 in the left child, the read end onto fd 0 in the right one"));
    }
    if fd_of(cat, 0) != fd_of(program, 0) || fd_of(wc, 1) != fd_of(program, 1) {
        return Err(Failure::wrong(
            "cat to read the program's stdin and wc to write to the program's stdout",
            format!(
                "cat's fd 0 is {}, wc's fd 1 is {}; the program's are {} and {}",
                fd_of(cat, 0),
                fd_of(wc, 1),
                fd_of(program, 0),
                fd_of(program, 1)
            ),
        ));
    }

    let k = run.rng.random_range(3..40);
    let mut text = String::new();
    for _ in 0..k {
        let n = run.rng.random_range(1..5);
        text.push_str(&words(&mut run.rng, n));
        text.push('\n');
    }
    p.feed_stdin(text.into_bytes())?;
    let rest = rest(
        run,
        &mut p,
        "`wc -l` to count the lines and the program to finish",
    )?;
    if rest.first().map(|l| l.trim()) != Some(k.to_string().as_str()) {
        return Err(Failure::wrong(
            format!("`wc -l` to print {k}, the lines the checker sent through `cat`"),
            format!("the program printed {}", quote_lines(&rest)),
        ));
    }
    expect_line_in(&rest, "left: cat exited with 0")?;
    expect_line_in(&rest, "right: wc exited with 0")?;
    exit_0(run, &mut p)
}

pub(super) fn sigpipe_default_after_exec(run: &mut Run) -> Outcome {
    let args: Vec<String> = ["yes", "|", "head", "-n", "1"].map(String::from).to_vec();
    let mut p = run.spawn("count", &args)?;
    let rest = rest(run, &mut p, "`head -n 1` to print `y` and both commands to end")
        .map_err(|f| {
            with_advice(
                f,
                "`yes` stops only when a write fails or SIGPIPE kills it, which happens once no read end is open: the parent must close its copies of both ends",
            )
        })?;
    if rest.first().map(String::as_str) != Some("y") {
        return Err(Failure::wrong(
            "`head -n 1` to print `y`",
            format!("the program printed {}", quote_lines(&rest)),
        ));
    }
    let wanted = "left: yes killed by SIGPIPE";
    if !rest.iter().any(|l| l == wanted) {
        let said = rest
            .iter()
            .find(|l| l.starts_with("left:"))
            .cloned()
            .unwrap_or_else(|| "nothing about it".into());
        return Err(Failure::wrong(
            format!("`{wanted}`, as in a shell"),
            format!("`{said}`"),
        )
        .because(
            "`yes` did not die of SIGPIPE when `head` left: it inherited SIGPIPE ignored from the Rust program (Rust ignores it), \
             got EPIPE instead and complained. Reset SIGPIPE to SIG_DFL in the child before execvp",
        ));
    }
    expect_line_in(&rest, "right: head exited with 0")?;
    exit_0(run, &mut p)
}
