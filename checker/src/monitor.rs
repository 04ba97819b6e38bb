//! Watching a scenario's processes from the outside while it runs: a thread
//! samples the checker's descendants every few milliseconds, so scenarios
//! can ask what really happened (how many processes, at the same time, with
//! which parents), and a runaway fork is stopped as soon as it is seen.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::procfs::{self, Stat};
use crate::sandbox;

/// How often the monitor looks.
const PERIOD: Duration = Duration::from_millis(5);

/// What the monitor saw at one moment.
#[derive(Debug, Clone)]
pub struct Sample {
    pub procs: Vec<Stat>,
}

#[derive(Default)]
struct Seen {
    samples: Vec<Sample>,
    /// Most processes alive at once, and the limit that was broken, if any.
    runaway: Option<usize>,
}

pub struct Monitor {
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Starts sampling; more than `max_procs` live processes at once kills
    /// them all.
    pub fn start(max_procs: usize) -> std::io::Result<Monitor> {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::Builder::new()
                .name("monitor".into())
                .spawn(move || {
                    let me = sandbox::checker_pid();
                    while !stop.load(Ordering::Relaxed) {
                        let procs = procfs::descendants(me);
                        let alive = procs.iter().filter(|s| !s.is_zombie()).count();
                        let mut guard = seen.lock().unwrap();
                        if alive > max_procs && guard.runaway.is_none() {
                            guard.runaway = Some(alive);
                            drop(guard);
                            sandbox::kill_all_descendants(Duration::from_secs(2));
                            guard = seen.lock().unwrap();
                        }
                        // Keep memory bounded: a sample identical to the
                        // previous one adds nothing.
                        let same = guard.samples.last().is_some_and(|last| last.procs == procs);
                        if !same {
                            guard.samples.push(Sample { procs });
                        }
                        drop(guard);
                        std::thread::sleep(PERIOD);
                    }
                })?
        };
        Ok(Monitor {
            seen,
            stop,
            thread: Some(thread),
        })
    }

    /// Some(n) if the monitor had to stop a runaway fork at n processes.
    pub fn runaway(&self) -> Option<usize> {
        self.seen.lock().unwrap().runaway
    }

    /// The most processes matching `filter` ever seen alive at one moment.
    pub fn max_alive_at_once(&self, filter: impl Fn(&Stat) -> bool) -> usize {
        let seen = self.seen.lock().unwrap();
        seen.samples
            .iter()
            .map(|s| {
                s.procs
                    .iter()
                    .filter(|p| !p.is_zombie() && filter(p))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    /// Every process ever seen, with the parent it had when first seen.
    pub fn ever_seen(&self) -> Vec<Stat> {
        let seen = self.seen.lock().unwrap();
        let mut out: Vec<Stat> = Vec::new();
        for sample in &seen.samples {
            for p in &sample.procs {
                if !out.iter().any(|o| o.pid == p.pid) {
                    out.push(p.clone());
                }
            }
        }
        out
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
