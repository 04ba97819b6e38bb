//! "Did you mean ...?": the known name closest to a mistyped one.

/// The candidate closest to `typed`, if one is close enough to be what
/// was meant: a few letters off (`forks`, `chek`), or a part of the name
/// (`sockets` for `unix-sockets`).
pub fn closest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed = typed.trim().to_lowercase();
    if typed.is_empty() {
        return None;
    }
    // About one mistake in three letters, at least one.
    let allowed = (typed.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter_map(|c| {
            let d = distance(&typed, c);
            let part = typed.chars().count() >= 3 && c.contains(typed.as_str());
            (d <= allowed || part).then_some((if part { 0 } else { d }, c))
        })
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance: insertions, deletions and substitutions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("forks", "fork"), 1);
        assert_eq!(distance("chek", "check"), 1);
        assert_eq!(distance("fifo", "fifo"), 0);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggests_near_misses_only() {
        let labs = ["fork", "pipe", "fifo", "unix-sockets", "nonblocking-select"];
        assert_eq!(closest("forks", labs), Some("fork"));
        assert_eq!(closest("Pipes", labs), Some("pipe"));
        assert_eq!(closest("sockets", labs), Some("unix-sockets"));
        assert_eq!(closest("select", labs), Some("nonblocking-select"));
        assert_eq!(closest("frobnicate", labs), None);
        assert_eq!(closest("x", labs), None);
        assert_eq!(closest("", labs), None);
    }
}
