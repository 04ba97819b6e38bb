//! The CSV that lab 12's `bench` writes: one row for the floor, then one
//! per mechanism. The lab's harness scenario checks it, `cargo lab bench`
//! draws it (`crate::chart`), and so does the test of the book's chart.

/// The first line, naming the columns.
pub const HEADER: &str = "name,messages,small_bytes,median_ns,p99_ns,latency_ratio,large_bytes,mb_per_s,throughput_ratio,cpu_ns_per_msg,cpu_ratio";

/// The mechanisms, as `relay` and `bench` name them, in the order of the
/// rows after the floor's.
pub const MECHANISMS: [&str; 5] = ["pipe", "fifo", "socket", "queue", "ring"];

/// One row: a mechanism's (or the floor's) figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub messages: u64,
    pub small_bytes: u64,
    pub median_ns: f64,
    pub p99_ns: f64,
    pub latency_ratio: f64,
    pub large_bytes: u64,
    pub mb_per_s: f64,
    pub throughput_ratio: f64,
    /// `cpu_ns_per_msg`.
    pub cpu_ns: f64,
    pub cpu_ratio: f64,
}

/// The rows of `text`: the header, then the floor and every mechanism in
/// order, each with eleven fields, numbers finite and not negative. The
/// error says what is wrong, in words for a report.
pub fn parse(text: &str) -> Result<Vec<Row>, String> {
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.trim() == HEADER => {}
        other => return Err(format!("the first line is {other:?}")),
    }
    let mut rows = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != 11 {
            return Err(format!("`{line}` has {} fields, not 11", f.len()));
        }
        let num = |i: usize| -> Result<f64, String> {
            f[i].parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| format!("`{}` in `{line}` is not a number", f[i]))
        };
        let int = |i: usize| -> Result<u64, String> {
            f[i].parse::<u64>()
                .map_err(|_| format!("`{}` in `{line}` is not a whole number", f[i]))
        };
        rows.push(Row {
            name: f[0].to_string(),
            messages: int(1)?,
            small_bytes: int(2)?,
            median_ns: num(3)?,
            p99_ns: num(4)?,
            latency_ratio: num(5)?,
            large_bytes: int(6)?,
            mb_per_s: num(7)?,
            throughput_ratio: num(8)?,
            cpu_ns: num(9)?,
            cpu_ratio: num(10)?,
        });
    }
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    let wanted: Vec<&str> = std::iter::once("floor").chain(MECHANISMS).collect();
    if names != wanted {
        return Err(format!("rows {names:?}, not {wanted:?}"));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str) -> String {
        format!("{name},100,64,1000,2000,1.5,65536,800,0.5,900,1.2")
    }

    #[test]
    fn reads_the_floor_and_every_mechanism() {
        let mut text = format!("{HEADER}\n{}\n", row("floor"));
        for m in MECHANISMS {
            text.push_str(&row(m));
            text.push('\n');
        }
        let rows = parse(&text).unwrap();
        assert_eq!(rows.len(), 6);
        assert_eq!(rows[3].name, "socket");
        assert_eq!(rows[3].small_bytes, 64);
        assert_eq!(rows[3].cpu_ns, 900.0);
    }

    #[test]
    fn refuses_a_missing_row_and_a_bad_number() {
        let text = format!("{HEADER}\n{}\n{}\n", row("floor"), row("pipe"));
        assert!(
            parse(&text)
                .unwrap_err()
                .starts_with("rows [\"floor\", \"pipe\"]")
        );
        let bad = format!("{HEADER}\nfloor,100,64,-1,2000,1.5,65536,800,0.5,900,1.2\n");
        assert_eq!(
            parse(&bad).unwrap_err(),
            "`-1` in `floor,100,64,-1,2000,1.5,65536,800,0.5,900,1.2` is not a number"
        );
        assert!(
            parse("name,messages\n")
                .unwrap_err()
                .starts_with("the first line is")
        );
    }
}
