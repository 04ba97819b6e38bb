//! `mux --timeout`: quiet spells are reported, and are not the end.

use std::time::{Duration, Instant};

use rand::Rng;
use rand::seq::SliceRandom;

use super::talk::{Awaited, Talk};
use super::{LATENCY, ms, where_is};
use crate::scenario::{Failure, Outcome, Run};

pub(super) fn timeout(run: &mut Run) -> Outcome {
    let mut backends = ["select", "poll", "epoll"];
    backends.shuffle(&mut run.rng);
    for backend in backends {
        quiet_spells(run, backend)?;
    }
    Ok(())
}

fn quiet_spells(run: &mut Run, backend: &'static str) -> Outcome {
    let t = run.rng.random_range(200..=300u64);
    let period = Duration::from_millis(t);
    let mut talk = Talk::start(run, backend, 2, Some(t))?;
    talk.gaps = (40, 80);
    talk.skip_timeouts = true;
    talk.gap(run);
    let (sent, seen) = talk.send_seen(run, 0)?;

    // Quiet: the checker writes nothing for a while.
    talk.skip_timeouts = false;
    let wanted = format!("timeout: nothing for {t} ms");
    // Lower bounds count from the write, which the program cannot have
    // seen earlier; upper bounds from the previous line, as the checker saw
    // it (late, if anything): a line that came 400 ms after its write
    // starts the program's wait 400 ms late. A loaded machine only makes
    // both looser.
    let first = quiet_line(run, &mut talk, &wanted, sent, period, seen, period)?;
    quiet_line(run, &mut talk, &wanted, sent, 2 * period, first, period)?;

    // It still reads afterwards.
    talk.skip_timeouts = true;
    talk.send(run, 1)?;
    talk.close(run, 0)?;
    talk.close(run, 1)?;
    let now = Instant::now();
    talk.expect(run, "all done", now, Awaited::Done)?;
    run.expect_success(&mut talk.p)
}

/// Expects `wanted` no sooner than `least` after `sent` (the checker's last
/// write), and no later than `period` + LATENCY after `since`.
fn quiet_line(
    run: &Run,
    talk: &mut Talk,
    wanted: &str,
    sent: Instant,
    least: Duration,
    since: Instant,
    period: Duration,
) -> Result<Instant, Failure> {
    let until = (since + period + LATENCY).min(run.deadline);
    let backend = talk.backend;
    match talk.p.next_line(until) {
        Ok(Some(line)) if line.text == wanted => {
            let after = sent.elapsed();
            // Measured when the checker saw it: never earlier than printed.
            if after + Duration::from_millis(2) < least {
                let failure = Failure::wrong(
                    format!("`{wanted}` no sooner than {} ms after the last line", ms(least)),
                    format!("it came after {} ms (mux {backend})", ms(after)),
                );
                // Early, but by no unit's factor (those are 1000 and more):
                // the wait counted from an earlier moment than the last line.
                let again = after >= least / 10;
                return Err(if again {
                    failure
                        .because(format!(
                            "it came {} ms after the line, early but by no unit's factor: the wait \
                             counted from an earlier moment, so it was not given the whole timeout \
                             again. A deadline computed once and kept (in the waiter, or before the \
                             loop) ends the next wait too soon, and every wait after it at once",
                            ms(after)
                        ))
                        .hint("Compute the deadline inside `wait`, from its `timeout` argument, at each call: every wait gets the whole timeout.")
                } else {
                    failure.because("the wait ended too early: poll and epoll_wait take milliseconds, select a TimeVal (seconds and microseconds); check the conversion")
                });
            }
            Ok(Instant::now())
        }
        Ok(Some(line)) => Err(Failure::wrong(
            format!("`{wanted}` (mux {backend})"),
            format!("`{}`", line.text),
        )),
        Ok(None) => Err(talk.ended(run, &format!("`{wanted}`")).because(
            "a timeout is not an end: report it and go on waiting for the sources that are still open",
        )),
        Err(_) if Instant::now() >= run.deadline => Err(run.timed_out(wanted)),
        Err(_) => Err(Failure::wrong(
            format!(
                "`{wanted}` about {} ms after the last line, when nothing else came (mux {backend})",
                ms(period)
            ),
            format!("nothing in {} ms", ms(since.elapsed())),
        )
        .because(format!(
            "the timeout was never reported: give the timeout to every wait, and when it returns \
             Woke::TimedOut report Event::Timeout, then wait again. Meanwhile {}",
            where_is(talk.p.pid)
        ))),
    }
}
