//! The showdown's results as a picture: two bar charts in one SVG file,
//! round-trip latency against the futex floor and throughput against the
//! copy floor, each bar labelled with its ratio and its absolute figure.
//! `cargo lab bench` writes it beside the CSV; the book shows the one made
//! from its own `results.csv`. An SVG scales to any screen, a phone's too.

use std::fmt::Write;

use crate::showdown_csv;

/// One row of the harness's CSV, as far as the chart needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub name: String,
    pub median_ns: f64,
    pub latency_ratio: f64,
    pub mb_per_s: f64,
    pub throughput_ratio: f64,
}

/// The bars of the chart from the text of `bench`'s CSV, with the small
/// and the large message sizes.
pub fn bars(text: &str) -> Result<(Vec<Bar>, u64, u64), String> {
    let rows = showdown_csv::parse(text)?;
    let small = rows.get(1).map_or(0, |r| r.small_bytes);
    let large = rows.first().map_or(0, |r| r.large_bytes);
    let bars = rows
        .into_iter()
        .map(|r| Bar {
            name: r.name,
            median_ns: r.median_ns,
            latency_ratio: r.latency_ratio,
            mb_per_s: r.mb_per_s,
            throughput_ratio: r.throughput_ratio,
        })
        .collect();
    Ok((bars, small, large))
}

/// Narrow enough that the text stays readable when a phone shrinks the
/// picture to its width.
const WIDTH: f64 = 480.0;
const LABEL: f64 = 60.0;
const ROW: f64 = 26.0;
const BAR: f64 = 18.0;
/// Room on the right of the longest bar for its text.
const TEXT: f64 = 140.0;

/// The SVG text for `bars` (the floor first, then every mechanism).
/// `small` and `large` are the message sizes, for the titles.
pub fn svg(bars: &[Bar], small: u64, large: u64) -> String {
    let mut body = String::new();
    let latency: Vec<(&str, f64, String)> = bars
        .iter()
        .map(|b| {
            let text = format!("{:.2} x ({} µs)", b.latency_ratio, micros(b.median_ns));
            (b.name.as_str(), b.latency_ratio, text)
        })
        .collect();
    let y = panel(
        &mut body,
        0.0,
        &format!("Round trip of {small} bytes (median)"),
        "as a ratio to the futex floor; shorter is better",
        &latency,
    );
    let throughput: Vec<(&str, f64, String)> = bars
        .iter()
        .map(|b| {
            let text = format!("{:.2} x ({:.0} MB/s)", b.throughput_ratio, b.mb_per_s);
            (b.name.as_str(), b.throughput_ratio, text)
        })
        .collect();
    let height = panel(
        &mut body,
        y + 16.0,
        &format!("Messages of {} KiB, one way", large / 1024),
        "as a ratio to the copy floor; longer is better",
        &throughput,
    );
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="-10 -10 {w:.0} {h:.0}" width="{w:.0}" height="{h:.0}" font-family="sans-serif" font-size="13" role="img">
<title>Latency and throughput of each mechanism, as ratios to their floors</title>
<rect x="-10" y="-10" width="{w:.0}" height="{h:.0}" fill="#ffffff"/>
{body}</svg>
"##,
        w = WIDTH + 20.0,
        h = height + 20.0,
    )
}

/// One bar chart from `y` down: a title, a subtitle, then a bar per row
/// (name, length, text after the bar), the floor's grey. Returns where it
/// ends.
fn panel(
    out: &mut String,
    y: f64,
    title: &str,
    subtitle: &str,
    rows: &[(&str, f64, String)],
) -> f64 {
    let max = rows.iter().map(|r| r.1).fold(1.0, f64::max);
    let scale = (WIDTH - LABEL - TEXT) / max;
    let _ = writeln!(
        out,
        r##"<text x="0" y="{:.0}" font-weight="bold">{}</text><text x="0" y="{:.0}" fill="#555555">{}</text>"##,
        y + 14.0,
        escape(title),
        y + 32.0,
        escape(subtitle)
    );
    let mut y = y + 44.0;
    for (name, ratio, text) in rows {
        let w = (ratio * scale).max(1.0);
        let fill = if *name == "floor" {
            "#9e9e9e"
        } else {
            "#3b6ea8"
        };
        let _ = writeln!(
            out,
            r#"<text x="0" y="{:.0}">{}</text><rect x="{LABEL}" y="{y:.0}" width="{w:.1}" height="{BAR}" fill="{fill}"/><text x="{:.1}" y="{:.0}">{}</text>"#,
            y + 14.0,
            escape(name),
            LABEL + w + 6.0,
            y + 14.0,
            escape(text),
        );
        y += ROW;
    }
    y
}

fn micros(ns: f64) -> String {
    format!("{:.1}", ns / 1000.0)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(name: &str, latency_ratio: f64, throughput_ratio: f64) -> Bar {
        Bar {
            name: name.into(),
            median_ns: 43_000.0 * latency_ratio,
            latency_ratio,
            mb_per_s: 8_000.0 * throughput_ratio,
            throughput_ratio,
        }
    }

    #[test]
    fn draws_a_bar_per_row_and_panel_with_its_figures() {
        let bars = [
            bar("floor", 1.0, 1.0),
            bar("pipe", 1.2, 0.4),
            bar("ring", 0.01, 0.98),
        ];
        let svg = svg(&bars, 64, 65536);
        assert!(svg.starts_with("<svg "));
        assert_eq!(
            svg.matches(&format!("<rect x=\"{LABEL}\"")).count(),
            6,
            "{svg}"
        );
        assert!(svg.contains("1.20 x (51.6 µs)"), "{svg}");
        assert!(svg.contains("0.40 x (3200 MB/s)"), "{svg}");
        assert!(svg.contains("Messages of 64 KiB, one way"), "{svg}");
        // The longest bar ends where the text column starts.
        let longest = (WIDTH - LABEL - TEXT) / 1.2 * 1.2;
        assert!(svg.contains(&format!("width=\"{longest:.1}\"")), "{svg}");
    }

    #[test]
    fn the_books_chart_is_drawn_from_the_books_results() {
        let root = crate::stage::course_root();
        let csv = root.join("book/src/12-showdown/results.csv");
        let chart = root.join("book/src/12-showdown/results.svg");
        let text = std::fs::read_to_string(&csv).expect("the book's results.csv");
        let (bars, small, large) = bars(&text).expect("a CSV of the harness");
        let drawn = svg(&bars, small, large);
        let kept = std::fs::read_to_string(&chart).unwrap_or_default();
        if kept != drawn && std::env::var_os("LAB_UPDATE_CHART").is_some() {
            std::fs::write(&chart, &drawn).expect("writing the book's chart");
            return;
        }
        assert!(
            kept == drawn,
            "{} is not drawn from {}: run `LAB_UPDATE_CHART=1 cargo test -p checker chart` to draw it \
             again, or `cargo lab bench --solutions --out book/src/12-showdown/results.csv` for new \
             results and their chart",
            chart.display(),
            csv.display()
        );
    }
}
