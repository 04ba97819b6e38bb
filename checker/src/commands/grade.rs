//! `cargo lab grade DIR`: grade every submission in DIR (each a checkout of
//! the course), `--jobs` at a time, into one report per student and a
//! summary table.
//!
//! Each submission is checked by `lab check LAB --tree SUB` processes of
//! its own, four at a time (`crate::checkers`), each in a bubblewrap
//! sandbox where the machine has one, so a submission that crashes or
//! hangs the checker loses nothing of the others.
//! Only the submission's `labs/*/src` is used: the checker, its scenarios
//! and every manifest are the instructor's own.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::Verdict;
use crate::checkers;
use crate::labs;
use crate::report::{self, Report};
use crate::stage::course_root;

/// How submissions are kept apart while they run at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Each in its own IPC namespace, with private /dev/shm, /dev/mqueue, /tmp.
    Bwrap,
    /// Side by side: only the checker's per-scenario prefixes keep them apart.
    None,
}

impl Isolation {
    pub fn name(self) -> &'static str {
        match self {
            Isolation::Bwrap => "bwrap (own IPC namespace, private /dev/shm, /dev/mqueue and /tmp)",
            Isolation::None => "none",
        }
    }
}

/// Whether bubblewrap is here and works (unprivileged user namespaces may
/// be off).
pub fn probe_isolation() -> Isolation {
    let works = Command::new("bwrap")
        .args(bwrap_args())
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        Isolation::Bwrap
    } else {
        Isolation::None
    }
}

fn bwrap_args() -> [&'static str; 11] {
    [
        "--dev-bind",
        "/",
        "/",             // the same files as outside...
        "--unshare-ipc", // ...but System V and POSIX IPC of its own,
        "--tmpfs",
        "/dev/shm", // an empty /dev/shm (shm, named semaphores),
        "--mqueue",
        "/dev/mqueue", // the namespace's own message queues,
        "--tmpfs",
        "/tmp", // and a /tmp of its own.
        "--die-with-parent",
    ]
}

struct Job {
    student: String,
    dir: PathBuf,
}

struct Graded {
    student: String,
    /// The checker's report, when it produced one.
    report: Option<Report>,
    error: Option<String>,
    seconds: f64,
}

pub fn run(dir: &Path, jobs: usize, out: &Path, sandbox: bool) -> Result<Verdict> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot open {}", dir.display()))?;
    let mut queue: VecDeque<Job> = VecDeque::new();
    let out_abs = std::env::current_dir()?.join(out);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| e.path() != out_abs)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        queue.push_back(Job {
            student: e.file_name().to_string_lossy().into_owned(),
            dir: e.path(),
        });
    }
    if queue.is_empty() {
        bail!(
            "{} holds no submissions (one directory per student, each a checkout of the course)",
            dir.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;

    let isolation = if sandbox {
        probe_isolation()
    } else {
        Isolation::None
    };
    if isolation == Isolation::None {
        eprintln!(
            "warning: isolation not available{}: submissions graded at the same time share /tmp and IPC names \
             (each scenario still has its own prefix and directory). Install bubblewrap, or use --jobs 1.",
            if sandbox {
                " (bwrap is missing or does not work here)"
            } else {
                " (--no-sandbox)"
            }
        );
    }
    let total = queue.len();
    let jobs = jobs.clamp(1, total);
    eprintln!(
        "grading {total} submission(s), {jobs} at a time, isolation: {}",
        isolation.name()
    );

    let exe = Arc::new(super::StableExe::new()?);
    let durations = Arc::new(checkers::LabDurations::default());
    let queue = Arc::new(Mutex::new(queue));
    let results = Arc::new(Mutex::new(Vec::new()));
    let began = Instant::now();
    let workers: Vec<_> = (0..jobs)
        .map(|slot| {
            let (queue, results, exe, durations) = (
                queue.clone(),
                results.clone(),
                exe.clone(),
                durations.clone(),
            );
            std::thread::Builder::new()
                .name("grade".into())
                .spawn(move || {
                    loop {
                        let Some(job) = queue.lock().unwrap().pop_front() else {
                            return;
                        };
                        let graded = grade_one(&job, slot, isolation, &exe.0, &durations);
                        let mut done = results.lock().unwrap();
                        done.push(graded);
                        let g = done.last().unwrap();
                        let score = match (&g.report, &g.error) {
                            (Some(r), None) => format!("{}/{}", r.score(), r.max_score()),
                            (_, Some(e)) => {
                                format!("not graded: {}", e.lines().next().unwrap_or(""))
                            }
                            _ => "?".into(),
                        };
                        eprintln!(
                            "[{}/{total}] {} {score} ({:.1} s)",
                            done.len(),
                            g.student,
                            g.seconds
                        );
                    }
                })
        })
        .collect::<Result<_, _>>()
        .context("starting a thread to grade submissions")?;
    for w in workers {
        let _ = w.join();
    }
    let mut results = std::mem::take(&mut *results.lock().unwrap());
    results.sort_by(|a, b| a.student.cmp(&b.student));

    for g in &results {
        let report = g
            .report
            .as_ref()
            .map_or_else(|| json!({"error": g.error}), Report::to_json);
        std::fs::write(
            out.join(format!("{}.json", g.student)),
            serde_json::to_string_pretty(&report)?,
        )?;
        std::fs::write(out.join(format!("{}.txt", g.student)), text_report(g))?;
    }
    write_summary(out, &results, isolation)?;
    eprintln!(
        "graded {total} submission(s) in {:.0} s; reports and summary.csv / summary.json in {}",
        began.elapsed().as_secs_f64(),
        out.display()
    );
    print_table(&results)?;
    Ok(Verdict::Passed)
}

fn grade_one(
    job: &Job,
    slot: usize,
    isolation: Isolation,
    exe: &Path,
    durations: &checkers::LabDurations,
) -> Graded {
    let began = Instant::now();
    let finish = |report, error| Graded {
        student: job.student.clone(),
        report,
        error,
        seconds: began.elapsed().as_secs_f64(),
    };
    if !job.dir.join("labs").is_dir() {
        return finish(
            None,
            Some("not a checkout of the course: no labs/ directory".into()),
        );
    }
    let labs: Vec<String> = labs::ALL.iter().map(|l| l.number.to_string()).collect();
    let results = checkers::each_lab(
        durations.order(&labs),
        checkers::AT_ONCE,
        checkers::OnError::Stop,
        |lab| {
            let started = Instant::now();
            let report = run_checker(job, slot, isolation, exe, lab);
            durations.record(lab, started.elapsed());
            report
        },
    );
    let mut merged = Report::default();
    for result in results {
        match result {
            Ok(report) => merged.merge(report),
            Err(e) => return finish(None, Some(e)),
        }
    }
    finish(Some(merged), None)
}

/// One `lab check LAB --tree SUBMISSION --format json`, sandboxed where
/// possible and stopped at its time budget: its report, or why there is none.
fn run_checker(
    job: &Job,
    slot: usize,
    isolation: Isolation,
    exe: &Path,
    lab: &str,
) -> Result<Report, String> {
    let mut cmd = match isolation {
        Isolation::Bwrap => {
            let mut c = Command::new("bwrap");
            c.args(bwrap_args());
            // The private /tmp hides what lives there: bring back the
            // course, the checker and the submission at their own paths.
            let mut shown = vec![course_root(), job.dir.clone()];
            shown.extend(exe.parent().map(Path::to_path_buf));
            for path in shown.iter().filter(|p| p.starts_with("/tmp")) {
                c.arg("--bind").arg(path).arg(path);
            }
            c.arg("--").arg(exe);
            c
        }
        Isolation::None => Command::new(exe),
    };
    cmd.args(["check", lab, "--format", "json", "--tree"])
        .arg(&job.dir)
        // One target directory per job slot: the dependencies build once
        // per slot, and slots never build at the same time in one place.
        .env(
            "LAB_TARGET_DIR",
            course_root().join(format!("target/lab/grade-slot-{slot}")),
        )
        .env("LAB_COURSE_ROOT", course_root())
        .env("NO_COLOR", "1")
        // Each submission compiles once: incremental data would only cost.
        .env("CARGO_INCREMENTAL", "0");
    checkers::report_of(cmd, checkers::budget())
}

fn lab_ids() -> Vec<String> {
    labs::ALL.iter().map(|l| l.dir()).collect()
}

/// Per lab: the score, or None when the report lacks the lab.
fn scores(report: Option<&Report>) -> Vec<Option<u64>> {
    lab_ids()
        .iter()
        .map(|id| report?.lab(id).map(|l| u64::from(l.score())))
        .collect()
}

fn write_summary(out: &Path, results: &[Graded], isolation: Isolation) -> Result<()> {
    let ids = lab_ids();
    let mut csv = format!("student,{},total,max,error\n", ids.join(","));
    let max: u32 = labs::ALL.iter().map(|l| l.max_score()).sum();
    let mut rows = Vec::new();
    for g in results {
        let s = scores(g.report.as_ref());
        let total: u64 = s.iter().flatten().sum();
        let cells: Vec<String> = s
            .iter()
            .map(|v| v.map(|n| n.to_string()).unwrap_or_else(|| "0".into()))
            .collect();
        let error = g
            .error
            .as_deref()
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("")
            .replace('"', "'");
        csv.push_str(&format!(
            "{},{},{total},{max},\"{error}\"\n",
            csv_field(&g.student),
            cells.join(",")
        ));
        rows.push(json!({
            "student": g.student,
            "labs": ids.iter().zip(&s).map(|(id, v)| (id.clone(), json!(v.unwrap_or(0)))).collect::<serde_json::Map<_, _>>(),
            "total": total,
            "max_score": max,
            "error": g.error,
            "seconds": (g.seconds * 10.0).round() / 10.0,
        }));
    }
    std::fs::write(out.join("summary.csv"), csv).context("writing summary.csv")?;
    let summary = json!({ "isolation": isolation.name(), "students": rows });
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )
    .context("writing summary.json")
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The student's name, why it was not graded if it was not, and the
/// report as `cargo lab check` prints it, without colours.
fn text_report(g: &Graded) -> String {
    let mut out = format!("{}\n", g.student);
    if let Some(e) = &g.error {
        out.push_str(&format!("not graded: {e}\n"));
    }
    if let Some(r) = &g.report {
        let mut text = anstream::StripStream::new(Vec::new());
        out.push('\n');
        // Writing to memory cannot fail.
        let _ = report::text(&mut text, r);
        out.push_str(&String::from_utf8_lossy(&text.into_inner()));
    }
    out
}

fn print_table(results: &[Graded]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let ids = lab_ids();
    let width = results
        .iter()
        .map(|g| g.student.len())
        .max()
        .unwrap_or(7)
        .max(7);
    write!(out, "{:width$}", "student")?;
    for id in &ids {
        write!(out, "  {:>5}", &id[..2])?;
    }
    writeln!(out, "  total")?;
    for g in results {
        write!(out, "{:width$}", g.student)?;
        let s = scores(g.report.as_ref());
        for v in &s {
            write!(
                out,
                "  {:>5}",
                v.map(|n| n.to_string()).unwrap_or_else(|| "-".into())
            )?;
        }
        let total: u64 = s.iter().flatten().sum();
        writeln!(
            out,
            "  {total:>5}{}",
            if g.error.is_some() {
                "  (not graded, see its report)"
            } else {
                ""
            }
        )?;
    }
    Ok(())
}
