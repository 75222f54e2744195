//! `cairn bench NAME`: benchmarks that run cairn and a peer side by side and print the ratio.
//!
//! Every benchmark shows progress on stderr, prints a readable table on stdout and ends with
//! one line of JSON, `{"bench": NAME, ...figures..., "ratio": R, "peer": "..."}`, where `ratio`
//! is oriented so that higher is better for cairn (DESIGN.md, "Benchmarks").

use std::fmt::Write as _;

pub mod alloc;
pub mod cache;
pub mod ebb;
pub mod iperf;
pub mod netpipe;
pub mod ninep;
pub mod spawn;

/// What one benchmark measured.
pub struct Report {
    /// The human-readable table (already formatted, printed as is).
    pub table: String,
    /// The figures for the JSON line, in order; `ratio` among them.
    pub fields: Vec<(&'static str, f64)>,
    /// What cairn was compared with.
    pub peer: String,
}

/// Prints a report: the table, then the JSON line last.
pub fn print(name: &str, report: &Report) {
    print!("{}", report.table);
    println!("{}", json_line(name, report));
}

/// The closing JSON line of a report.
pub fn json_line(name: &str, report: &Report) -> String {
    let mut line = format!("{{\"bench\": {}", json_string(name));
    for (key, value) in &report.fields {
        if value.is_finite() {
            let _ = write!(line, ", {}: {}", json_string(key), round(*value));
        } else {
            let _ = write!(line, ", {}: null", json_string(key));
        }
    }
    let _ = write!(line, ", \"peer\": {}}}", json_string(&report.peer));
    line
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Progress for a person watching: a line on stderr.
pub fn progress(msg: &str) {
    eprintln!("  .. {msg}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_is_valid_json_with_name_fields_and_peer() {
        let r = Report {
            table: String::new(),
            fields: vec![("cairn_ns", 12.3456), ("ratio", 2.0), ("bad", f64::NAN)],
            peer: "std \"mpsc\"".into(),
        };
        let line = json_line("spawn", &r);
        assert_eq!(
            line,
            r#"{"bench": "spawn", "cairn_ns": 12.346, "ratio": 2, "bad": null, "peer": "std \"mpsc\""}"#
        );
    }
}
