//! One admin-socket request, read and parsed the way Ceph's `AdminSocket::do_accept` does.
//!
//! Wire protocol (one request per connection): the client sends a JSON object such as
//! `{"prefix": "perf dump", "format": "json"}` ended by NUL or newline (at most
//! [`MAX_REQUEST`] bytes with its terminator, else the connection is closed unanswered), or the
//! legacy form: a big-endian u32 (`0`: socket version, `1`: perf dump, `2`: perf schema). The
//! reply is a big-endian u32 length and that many bytes; a failed command's reply starts
//! with `ERROR: (errno) message` and its reason on the next line, as Ceph's does.

use std::collections::BTreeMap;
use std::io::Read;

use thiserror::Error;

/// Longest request Ceph reads (its buffer is 1024 bytes, terminator included).
pub const MAX_REQUEST: usize = 1024;

/// A value of a request argument (Ceph's `cmd_vartype`).
#[derive(Debug, Clone, PartialEq)]
pub enum ArgValue {
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A real.
    Real(f64),
    /// An array of strings.
    Strs(Vec<String>),
    /// An array of integers.
    Ints(Vec<i64>),
    /// An array of reals.
    Reals(Vec<f64>),
}

/// A parsed request: the command prefix, the output format and the other arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `prefix` (empty when absent: no command matches it).
    pub prefix: String,
    /// `format`, when given.
    pub format: Option<String>,
    /// Every field, `prefix` and `format` included.
    pub args: BTreeMap<String, ArgValue>,
}

impl Request {
    /// A string argument.
    pub fn str_arg(&self, name: &str) -> Option<&str> {
        match self.args.get(name) {
            Some(ArgValue::Str(s)) => Some(s),
            _ => None,
        }
    }
}

/// What came in on the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A JSON command text (terminator removed).
    Json(String),
    /// The legacy binary request: the code's last byte.
    Legacy(u8),
}

/// Why no request could be read: the connection is closed without an answer, as Ceph does.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The peer closed before a terminator.
    #[error("connection closed before the request's terminator ({0} bytes read)")]
    Truncated(usize),
    /// No terminator within [`MAX_REQUEST`] bytes.
    #[error("request longer than {MAX_REQUEST} bytes")]
    TooLong,
    /// The socket failed (or timed out).
    #[error("reading the request: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a command text is not a request: answered with `-EINVAL` and this reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// Not JSON, not an object, or a field of a type Ceph does not take.
    #[error("invalid json")]
    InvalidJson,
    /// `prefix` or `format` is not a string.
    #[error("invalid json, missing format and/or prefix")]
    BadPrefixOrFormat,
}

/// Reads one request: bytes up to NUL or newline, or the legacy 4-byte code.
pub fn read_request(r: &mut impl Read) -> Result<Incoming, ReadError> {
    let mut buf = [0u8; MAX_REQUEST];
    let mut pos = 0;
    loop {
        let n = r.read(&mut buf[pos..pos + 1])?;
        if n == 0 {
            return Err(ReadError::Truncated(pos));
        }
        if buf[0] == 0 {
            if pos == 3 {
                return Ok(Incoming::Legacy(buf[3]));
            }
        } else if buf[pos] == b'\n' || buf[pos] == 0 {
            return Ok(Incoming::Json(
                String::from_utf8_lossy(&buf[..pos]).into_owned(),
            ));
        }
        pos += 1;
        if pos >= MAX_REQUEST {
            return Err(ReadError::TooLong);
        }
    }
}

impl Incoming {
    /// The JSON text of the request (the legacy codes are Ceph's command aliases `0`,
    /// `perfcounters_dump`, `perfcounters_schema`; other codes become `foo`, which no
    /// command matches).
    pub fn text(&self) -> String {
        match self {
            Incoming::Json(s) => s.clone(),
            Incoming::Legacy(code) => {
                let c = match code {
                    0 => "0",
                    1 => "perfcounters_dump",
                    2 => "perfcounters_schema",
                    _ => "foo",
                };
                format!("{{\"prefix\": \"{c}\"}}")
            }
        }
    }
}

/// Parses a command text with Ceph's rules (`cmdmap_from_json`): a JSON object whose values
/// are strings, booleans, numbers or arrays of one of those; `prefix` and `format` strings.
pub fn parse(text: &str) -> Result<Request, ParseError> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|_| ParseError::InvalidJson)?;
    let serde_json::Value::Object(o) = v else {
        return Err(ParseError::InvalidJson);
    };
    let mut args = BTreeMap::new();
    for (k, v) in o {
        let a = match v {
            serde_json::Value::String(s) => ArgValue::Str(s),
            serde_json::Value::Bool(b) => ArgValue::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => ArgValue::Int(i),
                None => ArgValue::Real(n.as_f64().ok_or(ParseError::InvalidJson)?),
            },
            serde_json::Value::Array(items) => array(items)?,
            serde_json::Value::Null | serde_json::Value::Object(_) => {
                return Err(ParseError::InvalidJson)
            }
        };
        args.insert(k, a);
    }
    let field = |name: &str| match args.get(name) {
        None => Ok(None),
        Some(ArgValue::Str(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ParseError::BadPrefixOrFormat),
    };
    let prefix = field("prefix")?.unwrap_or_default();
    let format = field("format")?;
    Ok(Request {
        prefix,
        format,
        args,
    })
}

/// An array argument: all strings, all integers or all reals (empty: strings).
fn array(items: Vec<serde_json::Value>) -> Result<ArgValue, ParseError> {
    use serde_json::Value;
    match items.first() {
        None => Ok(ArgValue::Strs(Vec::new())),
        Some(Value::String(_)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(ParseError::InvalidJson),
            })
            .collect::<Result<_, _>>()
            .map(ArgValue::Strs),
        Some(Value::Number(n)) if n.is_i64() => items
            .iter()
            .map(|v| v.as_i64().ok_or(ParseError::InvalidJson))
            .collect::<Result<_, _>>()
            .map(ArgValue::Ints),
        Some(Value::Number(_)) => items
            .iter()
            .map(|v| v.as_f64().ok_or(ParseError::InvalidJson))
            .collect::<Result<_, _>>()
            .map(ArgValue::Reals),
        Some(_) => Err(ParseError::InvalidJson),
    }
}

/// The body of a failed command's reply: `ERROR: (22) Invalid argument\n<reason>\n` then
/// whatever output the command produced (Ceph's `do_accept`).
pub fn error_body(errno: i32, reason: &str, output: &str) -> String {
    format!("ERROR: ({errno}) {}\n{reason}\n{output}", strerror(errno))
}

/// Ceph's `cpp_strerror` text for the errnos we answer with.
fn strerror(errno: i32) -> &'static str {
    match errno {
        libc::EINVAL => "Invalid argument",
        libc::ENOENT => "No such file or directory",
        libc::EPERM => "Operation not permitted",
        libc::ENOTSUP => "Operation not supported",
        _ => "Unknown error",
    }
}

/// Frames a reply: big-endian u32 length, then the body.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body[..len as usize]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<Incoming, ReadError> {
        read_request(&mut std::io::Cursor::new(bytes.to_vec()))
    }

    #[test]
    fn terminators_and_legacy() {
        assert_eq!(
            read(b"{\"prefix\": \"help\"}\0junk").ok(),
            Some(Incoming::Json("{\"prefix\": \"help\"}".into()))
        );
        assert_eq!(
            read(b"{\"prefix\": \"help\"}\nmore").ok(),
            Some(Incoming::Json("{\"prefix\": \"help\"}".into()))
        );
        assert_eq!(read(&[0, 0, 0, 1]).ok(), Some(Incoming::Legacy(1)));
        assert_eq!(
            Incoming::Legacy(9).text(),
            "{\"prefix\": \"foo\"}".to_owned()
        );
        assert!(matches!(read(b"{\"pre"), Err(ReadError::Truncated(5))));
        assert!(matches!(read(&[0, 0]), Err(ReadError::Truncated(2))));
    }

    #[test]
    fn long_requests_are_cut() {
        let long = vec![b'x'; MAX_REQUEST + 10];
        assert!(matches!(read(&long), Err(ReadError::TooLong)));
        let mut just = vec![b' '; MAX_REQUEST - 1];
        just.push(b'\n');
        assert!(read(&just).is_ok());
    }

    #[test]
    fn parse_like_cmdmap_from_json() {
        let r = parse(r#"{"prefix": "config get", "var": "ms_type", "format": "json"}"#)
            .expect("parses");
        assert_eq!(r.prefix, "config get");
        assert_eq!(r.format.as_deref(), Some("json"));
        assert_eq!(r.str_arg("var"), Some("ms_type"));
        let r =
            parse(r#"{"a": [1, 2], "b": [], "c": ["x"], "d": 1.5, "e": true}"#).expect("parses");
        assert_eq!(r.prefix, "");
        assert_eq!(r.args["a"], ArgValue::Ints(vec![1, 2]));
        assert_eq!(r.args["b"], ArgValue::Strs(vec![]));
        assert_eq!(r.args["d"], ArgValue::Real(1.5));
        for bad in [
            "garbage",
            "[1]",
            "{\"a\": {}}",
            "{\"a\": null}",
            "{\"a\": [\"x\", 1]}",
            "",
        ] {
            assert_eq!(parse(bad), Err(ParseError::InvalidJson), "{bad}");
        }
        assert_eq!(
            parse(r#"{"prefix": 3}"#),
            Err(ParseError::BadPrefixOrFormat)
        );
    }

    #[test]
    fn error_shape() {
        assert_eq!(
            error_body(libc::EINVAL, "unknown command prefix foo", ""),
            "ERROR: (22) Invalid argument\nunknown command prefix foo\n"
        );
        assert_eq!(frame(b"ab"), vec![0, 0, 0, 2, b'a', b'b']);
    }
}
