//! Submissions that misbehave: each gets a clear verdict within its time
//! limit plus a few seconds, and leaves no process behind.

mod common;

use std::time::{Duration, Instant};

use common::{lab, processes_under, solution_lib_with, tree_with_lab01};

const START_BODY: &str = "        .context(\"flushing stdout before fork\")?;\n";

/// Checks `fork-returns-twice` on a tree whose `start` begins with `body`;
/// returns (exit code, stdout, seconds taken).
fn check(tree: &std::path::Path, test: &str) -> (i32, String, Duration) {
    let began = Instant::now();
    let out = lab(test)
        .args(["check", "1", "--scenario", "fork-returns-twice", "--tree"])
        .arg(tree)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text, began.elapsed())
}

/// One misbehaviour: code put at the start of lab 01's `start`, the exit
/// status expected, and words the report must contain.
struct Case {
    name: &'static str,
    body: &'static str,
    code: i32,
    says: &'static str,
}

const CASES: &[Case] = &[
    Case { name: "does-not-compile", body: "    this is not rust;\n", code: 1, says: "did not compile" },
    Case {
        name: "hangs",
        body: "    loop { std::thread::sleep(std::time::Duration::from_secs(3600)); }\n",
        code: 1,
        says: "is sleeping in",
    },
    Case { name: "infinite-loop", body: "    loop { std::hint::spin_loop(); }\n", code: 1, says: "using CPU" },
    Case {
        name: "deadlock",
        body: "    let (r, w) = nix::unistd::pipe()?;
    if let ForkResult::Child = unsafe { fork() }? {
        let mut b = [0u8; 1];
        let _ = nix::unistd::read(&r, &mut b);
        unsafe { libc::_exit(0) }
    }
    let _ = waitpid(None, None);
    drop(w);
",
        code: 1,
        says: "whose write end is still open",
    },
    Case {
        name: "fork-bomb",
        body: "    loop { let _ = unsafe { fork() }; std::thread::sleep(std::time::Duration::from_millis(1)); }\n",
        code: 1,
        says: "runaway fork",
    },
    Case { name: "floods", body: "    loop { print!(\"{}\", \"x\".repeat(4096)); }\n", code: 1, says: "printed more than" },
    Case {
        name: "memory-hog",
        // Address space, not pages: it reaches the limit at once even on a
        // busy machine.
        body: "    let mut hog: Vec<Vec<u8>> = Vec::new();\n    loop { hog.push(Vec::with_capacity(1 << 28)); }\n",
        code: 1,
        says: "out of memory",
    },
    Case {
        name: "daemon",
        body: "    if let ForkResult::Child = unsafe { fork() }? {
        let _ = nix::unistd::setsid();
        loop { std::thread::sleep(std::time::Duration::from_secs(1)); }
    }
",
        code: 1,
        // It keeps the program's stdout open: the checker waits, then says
        // where everyone is, the escaped daemon included.
        says: "orphaned",
    },
    Case {
        name: "stopped-child",
        body: "    if let ForkResult::Child = unsafe { fork() }? {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
        unsafe { libc::_exit(0) }
    }
    let _ = waitpid(None, None);
",
        code: 1,
        says: "is stopped",
    },
    Case { name: "closes-stdout", body: "    unsafe { libc::close(1); }\n", code: 1, says: "closed its output" },
    Case {
        name: "leaves-ipc-objects",
        body: "    let prefix = std::env::var(\"LAB_IPC_PREFIX\").unwrap_or_default();
    let _ = std::fs::write(format!(\"/dev/shm/{}adversary-shm\", prefix.trim_start_matches('/')), b\"x\");
    let sem = std::ffi::CString::new(format!(\"{prefix}adversary-sem\")).unwrap();
    unsafe { libc::sem_open(sem.as_ptr(), libc::O_CREAT, 0o600, 1) };
    let mq = std::ffi::CString::new(format!(\"{prefix}adversary-mq\")).unwrap();
    unsafe { libc::mq_open(mq.as_ptr(), libc::O_CREAT | libc::O_RDWR, 0o600, std::ptr::null_mut::<libc::mq_attr>()) };
    let fifo = std::ffi::CString::new(\"adversary-fifo\").unwrap();
    unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) };
",
        // Otherwise correct: it passes, and the checker cleans up after it.
        code: 0,
        says: "PASS",
    },
];

/// Named IPC objects and FIFOs the adversaries made that still exist.
fn ipc_leftovers() -> Vec<String> {
    let mut found = Vec::new();
    for dir in ["/dev/shm", "/dev/mqueue"] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains("adversary") {
                found.push(format!("{dir}/{name}"));
            }
        }
    }
    for e in std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        if e.path().join("adversary-fifo").exists() {
            found.push(e.path().join("adversary-fifo").display().to_string());
        }
    }
    found
}

/// The scenario's own duration, as the report prints it (`... 5.01s`).
fn scenario_seconds(report: &str) -> Option<f64> {
    let line = report
        .lines()
        .find(|l| l.contains("fork-returns-twice") && l.contains("points"))?;
    line.split_whitespace()
        .last()?
        .trim_end_matches('s')
        .parse()
        .ok()
}

#[test]
fn misbehaving_submissions_get_clear_verdicts() {
    // The submissions are the solution with a misbehaviour added.
    if !common::has_solutions("misbehaving_submissions_get_clear_verdicts") {
        return;
    }
    // One tree, rewritten for each case: the dependencies build once.
    for case in CASES {
        if case.name == "fork-bomb" && !common::fork_bombs_are_capped() {
            eprintln!(
                "skipping the fork bomb: running as root without a writable pids cgroup, nothing would cap it"
            );
            continue;
        }
        // Only what this case leaves counts (another run may have left some).
        let before = ipc_leftovers();
        let lib = solution_lib_with(START_BODY, &format!("{START_BODY}{}", case.body));
        let tree = tree_with_lab01("bad-input", &lib);
        let (code, text, took) = check(&tree, case.name);
        let name = case.name;
        assert_eq!(code, case.code, "{name}: exit status\n{text}");
        assert!(
            text.contains(case.says),
            "{name}: the report should say {:?}:\n{text}",
            case.says
        );
        // A verdict within the scenario's limit (5 s) plus 5 s; the whole
        // command, with its build, well within a minute and a half.
        if let Some(seconds) = scenario_seconds(&text) {
            assert!(seconds < 10.0, "{name}: the scenario took {seconds} s");
        }
        assert!(took < Duration::from_secs(90), "{name}: took {took:?}");
        let left = processes_under(&common::course_root().join("target/lab"));
        assert!(left.is_empty(), "{name}: processes left behind: {left:?}");
        let ipc: Vec<String> = ipc_leftovers()
            .into_iter()
            .filter(|o| !before.contains(o))
            .collect();
        assert!(ipc.is_empty(), "{name}: IPC objects left behind: {ipc:?}");
    }
}
