//! The labs, as data: each lab's scenarios and fixtures live in one file
//! named after it.

use std::fmt;

use crate::scenario::{Fixture, Scenario, Variant};

mod deadlock;
mod fifo;
mod fork;
mod locks;
mod pipe;
mod queues;
mod select;
mod semaphores;
mod shared_memory;
pub mod showdown;
mod signals;
mod unix_sockets;

pub struct Lab {
    pub number: u8,
    pub slug: &'static str,
    pub title: &'static str,
    /// The files the student edits, relative to the lab's directory. The
    /// checker takes exactly these from the tree it checks, and every other
    /// file (the manifest, `src/given.rs`, the programs in `src/bin/`) from
    /// the course's own `labs/NN-slug/`.
    pub student: &'static [&'static str],
    pub scenarios: &'static [Scenario],
    pub fixtures: &'static [Fixture],
    /// Correct solutions written differently from the reference, as
    /// patches in `checker/fixtures/NN-slug/` like the fixtures: each must
    /// pass every scenario (a check that rejects a valid design is a defect).
    pub variants: &'static [Variant],
}

impl Lab {
    /// The lab's directory name: `01-fork`.
    pub fn dir(&self) -> String {
        format!("{:02}-{}", self.number, self.slug)
    }

    pub fn max_score(&self) -> u32 {
        self.scenarios.iter().map(|s| s.points).sum()
    }

    pub fn scenario(&self, name: &str) -> Option<&'static Scenario> {
        self.scenarios.iter().find(|s| s.name == name)
    }
}

/// Every lab of the course, in order.
pub static ALL: &[&Lab] = &[
    &fork::LAB,
    &pipe::LAB,
    &fifo::LAB,
    &select::LAB,
    &shared_memory::LAB,
    &locks::LAB,
    &semaphores::LAB,
    &deadlock::LAB,
    &queues::LAB,
    &unix_sockets::LAB,
    &signals::LAB,
    &showdown::LAB,
];

/// A lab name that matches no lab.
#[derive(Debug)]
pub struct UnknownLab(pub String);

impl fmt::Display for UnknownLab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "there is no lab {:?}.", self.0)?;
        let typed = self.0.trim().trim_end_matches('/');
        let typed = typed.rsplit('/').next().unwrap_or(typed);
        let dirs: Vec<String> = ALL.iter().map(|lab| lab.dir()).collect();
        let names = ALL
            .iter()
            .map(|lab| lab.slug)
            .chain(dirs.iter().map(String::as_str));
        if let Some(near) = crate::suggest::closest(typed, names) {
            write!(f, " Did you mean `{near}`?")?;
        }
        writeln!(f, " The labs are:")?;
        let width = ALL.iter().map(|lab| lab.dir().len()).max().unwrap_or(0);
        for lab in ALL {
            writeln!(
                f,
                "  {:>2}  {:<width$}  {}",
                lab.number,
                lab.dir(),
                lab.title
            )?;
        }
        write!(
            f,
            "Name a lab by number (1, 01), by name (fork) or both (01-fork)."
        )
    }
}

impl std::error::Error for UnknownLab {}

/// The labs named (each by any of its names), or all of them if `names`
/// is empty.
pub fn select(names: &[String]) -> Result<Vec<&'static Lab>, UnknownLab> {
    if names.is_empty() {
        return Ok(ALL.to_vec());
    }
    names.iter().map(|n| find(n)).collect()
}

/// Finds a lab by `3`, `03`, `fifo` or `03-fifo`.
pub fn find(name: &str) -> Result<&'static Lab, UnknownLab> {
    let wanted = name.trim().trim_end_matches('/');
    // Accept a path too: labs/01-fork.
    let wanted = wanted.rsplit('/').next().unwrap_or(wanted);
    ALL.iter()
        .copied()
        .find(|lab| {
            wanted == lab.dir()
                || wanted == lab.slug
                || wanted.parse::<u8>().is_ok_and(|n| n == lab.number)
        })
        .ok_or_else(|| UnknownLab(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_lab_by_any_of_its_names() {
        for name in ["1", "01", "fork", "01-fork", "labs/01-fork/"] {
            assert_eq!(find(name).unwrap().slug, "fork", "{name}");
        }
        let err = find("sockets-and-stuff").err().unwrap().to_string();
        assert!(err.contains("01-fork"), "{err}");
        let err = find("forks").err().unwrap().to_string();
        assert!(err.contains("Did you mean `fork`?"), "{err}");
    }

    #[test]
    fn the_list_of_labs_is_aligned() {
        let err = find("nothing-like-it").err().unwrap().to_string();
        assert!(!err.contains("Did you mean"), "{err}");
        // Every title starts in the same column, after the longest name.
        let rows: Vec<&str> = err.lines().filter(|l| l.starts_with("  ")).collect();
        assert_eq!(rows.len(), ALL.len(), "{err}");
        let titles: Vec<usize> = ALL
            .iter()
            .zip(&rows)
            .map(|(lab, row)| row.find(lab.title).unwrap())
            .collect();
        assert!(titles.windows(2).all(|w| w[0] == w[1]), "{err}");
        assert!(
            rows.iter()
                .all(|row| !row.contains("select") || row.contains("select  ")),
            "{err}"
        );
    }

    #[test]
    fn every_lab_is_declared_consistently() {
        for (i, lab) in ALL.iter().enumerate() {
            assert_eq!(
                lab.number as usize,
                i + 1,
                "labs are numbered 1, 2, 3 ... in order"
            );
            assert!(!lab.scenarios.is_empty());
            let mut names: Vec<_> = lab.scenarios.iter().map(|s| s.name).collect();
            names.sort();
            names.dedup();
            assert_eq!(
                names.len(),
                lab.scenarios.len(),
                "{}: duplicate scenario names",
                lab.dir()
            );
            for s in lab.scenarios {
                assert!(
                    s.points > 0 && !s.hints.is_empty() && !s.limit.is_zero(),
                    "{}",
                    s.name
                );
            }
            for f in lab.fixtures {
                assert!(
                    lab.scenario(f.caught_by).is_some(),
                    "fixture {} names no scenario",
                    f.name
                );
            }
        }
    }
}
