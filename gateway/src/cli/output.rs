//! How the CLI prints: readable tables and `field: value` blocks, or JSON with `--json`.

use serde_json::Value;

pub fn json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

/// `field: value` lines for one object.
pub fn object(value: &Value) {
    let Some(map) = value.as_object() else {
        println!("{}", cell(value));
        return;
    };
    let width = map.keys().map(String::len).max().unwrap_or(0);
    for (key, v) in map {
        println!("{key:width$}  {}", cell(v));
    }
}

/// A table of `rows` (objects) showing `columns` as (header, field).
pub fn table(rows: &[Value], columns: &[(&str, &str)]) {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| columns.iter().map(|(_, field)| cell(&row[*field])).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (header, _))| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([header.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<String>| {
        let mut out = String::new();
        for (i, v) in values.iter().enumerate() {
            if i + 1 == values.len() {
                out.push_str(v);
            } else {
                out.push_str(&format!("{v:w$}  ", w = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(columns.iter().map(|(h, _)| (*h).to_owned()).collect());
    for row in cells {
        line(row);
    }
    if rows.is_empty() {
        println!("(none)");
    }
}

pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(cell).collect();
            if parts.is_empty() { "-".into() } else { parts.join(", ") }
        }
        other => other.to_string(),
    }
}
