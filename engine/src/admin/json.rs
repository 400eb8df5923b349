//! A JSON writer shaped like Ceph's `JSONFormatter`: objects and arrays opened and closed as
//! sections, `json-pretty` with four-space indentation and a final newline, `json` compact
//! (`{"a":1}`), strings escaped as Ceph escapes them.

use std::fmt::Write;

/// Output shape, from the request's `format` (Ceph's `Formatter::create` with `json-pretty`
/// as default and fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `json`: compact.
    Json,
    /// `json-pretty` (the default).
    JsonPretty,
}

impl Format {
    /// The format a request named: `json` or `json-pretty`; anything else (absent, `xml`,
    /// `plain`, unknown) falls back to `json-pretty`.
    pub fn from_request(name: Option<&str>) -> Format {
        match name {
            Some("json") => Format::Json,
            _ => Format::JsonPretty,
        }
    }
}

/// One open section: whether it is an array (names are dropped inside) and how many
/// entries it already holds.
struct Section {
    array: bool,
    entries: usize,
}

/// Builds one JSON document.
pub struct JsonWriter {
    out: String,
    pretty: bool,
    stack: Vec<Section>,
    /// Entries at the top level (a document normally holds one section).
    top: usize,
}

impl JsonWriter {
    /// An empty document in `format`.
    pub fn new(format: Format) -> JsonWriter {
        JsonWriter {
            out: String::new(),
            pretty: format == Format::JsonPretty,
            stack: Vec::new(),
            top: 0,
        }
    }

    fn indent(&mut self) {
        for _ in 0..self.stack.len() {
            self.out.push_str("    ");
        }
    }

    /// Separator and name before a new entry.
    fn entry(&mut self, name: &str) {
        let (entries, array) = match self.stack.last_mut() {
            Some(s) => {
                s.entries += 1;
                (s.entries, s.array)
            }
            None => {
                self.top += 1;
                (self.top, true)
            }
        };
        if entries > 1 {
            self.out.push(',');
        }
        if self.pretty && !self.stack.is_empty() {
            self.out.push('\n');
            self.indent();
        }
        if !array {
            escape_into(&mut self.out, name);
            self.out.push(':');
            if self.pretty {
                self.out.push(' ');
            }
        }
    }

    /// Opens an object named `name` (the name is ignored at the top and inside arrays).
    pub fn open_object(&mut self, name: &str) {
        self.entry(name);
        self.out.push('{');
        self.stack.push(Section {
            array: false,
            entries: 0,
        });
    }

    /// Opens an array named `name`.
    pub fn open_array(&mut self, name: &str) {
        self.entry(name);
        self.out.push('[');
        self.stack.push(Section {
            array: true,
            entries: 0,
        });
    }

    /// Closes the innermost section (no-op when none is open).
    pub fn close(&mut self) {
        let Some(s) = self.stack.pop() else {
            return;
        };
        if self.pretty && s.entries > 0 {
            self.out.push('\n');
            self.indent();
        }
        self.out.push(if s.array { ']' } else { '}' });
    }

    /// A string value.
    pub fn string(&mut self, name: &str, value: &str) {
        self.entry(name);
        escape_into(&mut self.out, value);
    }

    /// An unsigned integer.
    pub fn unsigned(&mut self, name: &str, value: u64) {
        self.entry(name);
        let _ = write!(self.out, "{value}");
    }

    /// A signed integer.
    pub fn int(&mut self, name: &str, value: i64) {
        self.entry(name);
        let _ = write!(self.out, "{value}");
    }

    /// A boolean.
    pub fn bool(&mut self, name: &str, value: bool) {
        self.entry(name);
        self.out.push_str(if value { "true" } else { "false" });
    }

    /// Closes what is still open and returns the text (`json-pretty` ends with a newline, as
    /// Ceph's does).
    pub fn finish(mut self) -> String {
        while !self.stack.is_empty() {
            self.close();
        }
        if self.pretty {
            self.out.push('\n');
        }
        self.out
    }
}

/// Appends `s` as a quoted JSON string.
fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(format: Format) -> String {
        let mut w = JsonWriter::new(format);
        w.open_object("top");
        w.unsigned("a", 1);
        w.open_object("b");
        w.unsigned("t", 15);
        w.close();
        w.open_array("c");
        w.string("item", "x/y\"z");
        w.int("item", -2);
        w.close();
        w.open_object("empty");
        w.close();
        w.bool("d", true);
        w.close();
        w.finish()
    }

    #[test]
    fn compact_like_ceph() {
        assert_eq!(
            doc(Format::Json),
            r#"{"a":1,"b":{"t":15},"c":["x/y\"z",-2],"empty":{},"d":true}"#
        );
    }

    #[test]
    fn pretty_like_ceph() {
        let want = "{\n    \"a\": 1,\n    \"b\": {\n        \"t\": 15\n    },\n    \"c\": [\n        \"x/y\\\"z\",\n        -2\n    ],\n    \"empty\": {},\n    \"d\": true\n}\n";
        assert_eq!(doc(Format::JsonPretty), want);
    }

    #[test]
    fn output_is_valid_json() {
        for f in [Format::Json, Format::JsonPretty] {
            let v: serde_json::Value = serde_json::from_str(&doc(f)).expect("valid json");
            assert_eq!(v["c"][0], "x/y\"z");
            assert_eq!(v["b"]["t"], 15);
        }
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut w = JsonWriter::new(Format::Json);
        w.open_object("");
        w.string("k\u{1}", "a\nb\u{7f}");
        let s = w.finish();
        assert_eq!(s, "{\"k\\u0001\":\"a\\nb\u{7f}\"}");
    }
}
