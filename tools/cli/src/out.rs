//! Output: text for people, JSON for scripts, tables, progress bars.

use cairndb::value::{self, Value};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value as Json;
use std::io::Write;

/// How a command prints.
#[derive(Debug, Clone, Copy, Default)]
pub struct Out {
    pub json: bool,
    pub quiet: bool,
}

impl Out {
    /// Print `j` (with --json) or the text `human` makes.
    pub fn emit(&self, j: Json, human: impl FnOnce() -> String) {
        if self.json {
            println!("{j}");
        } else {
            let s = human();
            if !s.is_empty() {
                println!("{}", s.trim_end_matches('\n'));
            }
        }
    }

    /// A progress bar over `len` units (None: a spinner), hidden with --quiet, --json or when
    /// stderr is not a terminal.
    pub fn bar(&self, len: Option<u64>, what: &str, bytes: bool) -> ProgressBar {
        if self.quiet || self.json {
            return ProgressBar::hidden();
        }
        let bar = match len {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        let template = match (len.is_some(), bytes) {
            (true, true) => "{msg} [{bar:32}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            (true, false) => "{msg} [{bar:32}] {pos}/{len} {per_sec} eta {eta}",
            (false, true) => "{spinner} {msg} {bytes} {bytes_per_sec}",
            (false, false) => "{spinner} {msg} {pos} {per_sec}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        bar
    }
}

/// A document (or any value) as compact JSON text (bytes as {"$binary":"<base64>"}).
pub fn to_json(v: &Value) -> String {
    let mut s = String::new();
    value::to_json(v, &mut s);
    s
}

/// A value as a serde_json value, through its JSON text.
pub fn to_serde(v: &Value) -> Json {
    serde_json::from_str(&to_json(v)).unwrap_or(Json::Null)
}

/// A string as a JSON string literal.
pub fn quote(s: &str) -> String {
    Json::String(s.to_string()).to_string()
}

/// Bytes as a JSON value: a string when they are UTF-8, else {"$binary":"<base64>"}.
pub fn bytes_json(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => quote(s),
        Err(_) => to_json(&Value::Bytes(b.to_vec())),
    }
}

/// Text of one table cell: strings as they are, anything else as JSON; cut to `max` chars.
fn cell(v: Option<&Value>, max: usize) -> String {
    let s = match v {
        None => String::new(),
        Some(Value::Str(s)) => s.clone(),
        Some(v) => to_json(v),
    };
    let s = s.replace(['\n', '\t'], " ");
    if s.chars().count() > max {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    } else {
        s
    }
}

/// Documents as aligned columns: one per top-level field, in order of first appearance.
pub fn table(docs: &[Value]) -> String {
    const MAX_CELL: usize = 40;
    let mut cols: Vec<String> = Vec::new();
    for d in docs {
        if let Some(m) = d.as_map() {
            for k in m.keys() {
                if !cols.iter().any(|c| c == k) {
                    cols.push(k.to_string());
                }
            }
        }
    }
    if cols.is_empty() {
        return format!("({} documents)", docs.len());
    }
    let rows: Vec<Vec<String>> = docs
        .iter()
        .map(|d| {
            cols.iter()
                .map(|c| cell(d.as_map().and_then(|m| m.get(c)), MAX_CELL))
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = cols.iter().map(|c| c.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(w - c.chars().count()));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(&cols);
    out.push('\n');
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&line(&rule));
    for r in &rows {
        out.push('\n');
        out.push_str(&line(r));
    }
    out.push_str(&format!(
        "\n({} document{})",
        docs.len(),
        if docs.len() == 1 { "" } else { "s" }
    ));
    out
}

/// Write to stdout, treating a closed pipe (`cairn ... | head`) as the end, not an error.
pub fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let a = value::from_json(br#"{"_id":1,"room":"R1","temp":21.5}"#, 8).unwrap();
        let b = value::from_json(br#"{"_id":22,"room":"Lab","extra":[1,2]}"#, 8).unwrap();
        let t = table(&[a, b]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "_id  room  temp  extra");
        assert_eq!(lines[2], "1    R1    21.5");
        assert_eq!(lines[3], "22   Lab         [1,2]");
        assert_eq!(lines[4], "(2 documents)");
    }

    #[test]
    fn bytes_as_json() {
        assert_eq!(bytes_json(b"abc"), "\"abc\"");
        assert_eq!(bytes_json(&[0xff, 0]), r#"{"$binary":"/wA="}"#);
    }
}
