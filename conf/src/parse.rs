//! The `ceph.conf` grammar, as Ceph's `ConfFile` (`common/ConfUtils.cc`) accepts it.
//!
//! Observed and checked against `ceph-conf` (Ceph 16.2 and 20.2):
//! * a file is `[section]` headings, each followed by `key = value` lines; a heading is
//!   taken literally (`[ osd.3 ]` is the section " osd.3 ", which no entity reads); a
//!   file of a single `key = value` line and nothing else is that key in `[global]`;
//! * every line, the last one included, must end with a newline;
//! * a key is words of non-blank characters (no `=`, `[`, `#`, `;`) separated by blanks;
//!   it is normalised by trimming and turning each run of whitespace into one `_`, so
//!   `mon  host` is `mon_host`, while `-` stays a `-` (`ms-bind-ipv6` is another key) and
//!   case is kept;
//! * `#` and `;` start a comment anywhere outside a quoted value; `\` escapes the next
//!   character (`\#` is `#`, `\\` is `\`), and `\` at the end of a line continues the line:
//!   the newline goes, the blanks on both sides stay;
//! * a value is either `"…"` / `'…'` (no comment characters inside; nothing but blanks or
//!   a comment may follow it) or the rest of the line, trimmed;
//! * a key given twice in a section, or in a section given twice, keeps its last value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Why a configuration file was rejected: the file, line and column (1-based) and what
/// the grammar expected there.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{}:{line}:{column}: parse error: expected {expected}", file.display())]
pub struct ParseError {
    /// The file (or `<buffer>` for text parsed from memory).
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What the grammar wanted at that place.
    pub expected: &'static str,
}

/// One `key = value` line of a section, with the line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfLine {
    /// The value, unquoted, unescaped and trimmed.
    pub value: String,
    /// 1-based line of the key.
    pub line: usize,
}

/// A parsed configuration file: sections by their literal heading, keys normalised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfFile {
    /// Where the text came from.
    pub path: PathBuf,
    /// Section heading → normalised key → line.
    pub sections: BTreeMap<String, BTreeMap<String, ConfLine>>,
}

/// Normalises an option name as Ceph does for a file key and for a `--lookup` key: trims
/// whitespace and turns each run of whitespace inside into one `_` (dashes are kept).
pub fn normalize_key(key: &str) -> String {
    key.split_whitespace().collect::<Vec<_>>().join("_")
}

/// Normalises an option name given on the command line (`--ms-bind-ipv6`): there, Ceph
/// treats dashes and underscores alike.
pub fn normalize_cli_key(key: &str) -> String {
    normalize_key(key).replace('-', "_")
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_comment_start(c: char) -> bool {
    c == '#' || c == ';'
}

/// A cursor over the text that knows its line and column.
struct Cursor<'a> {
    chars: Vec<char>,
    pos: usize,
    file: &'a Path,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn at(&self, i: usize) -> Option<char> {
        self.chars.get(self.pos + i).copied()
    }
    fn eol_len(&self, at: usize) -> usize {
        match (self.chars.get(at), self.chars.get(at + 1)) {
            (Some('\r'), Some('\n')) => 2,
            (Some('\n'), _) => 1,
            _ => 0,
        }
    }
    fn at_eol(&self) -> bool {
        self.eol_len(self.pos) > 0
    }
    fn line_col(&self, pos: usize) -> (usize, usize) {
        let before = &self.chars[..pos.min(self.chars.len())];
        let line = before.iter().filter(|&&c| c == '\n').count() + 1;
        let col = before.iter().rev().take_while(|&&c| c != '\n').count() + 1;
        (line, col)
    }
    fn error(&self, expected: &'static str) -> ParseError {
        let (line, column) = self.line_col(self.pos);
        ParseError {
            file: self.file.to_path_buf(),
            line,
            column,
            expected,
        }
    }
    /// Ceph's skipper: any number of continuation markers (`\` newline) and comments
    /// (blanks, `#`/`;`, the rest of the line but not its newline).
    fn skip(&mut self) {
        loop {
            if self.peek() == Some('\\') && self.eol_len(self.pos + 1) > 0 {
                self.pos += 1 + self.eol_len(self.pos + 1);
                continue;
            }
            let mut i = self.pos;
            while self.chars.get(i).is_some_and(|&c| is_blank(c)) {
                i += 1;
            }
            if self.chars.get(i).is_some_and(|&c| is_comment_start(c)) {
                while i < self.chars.len() && self.eol_len(i) == 0 {
                    i += 1;
                }
                self.pos = i;
                continue;
            }
            return;
        }
    }
    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.pos += 1;
        }
    }
    /// One `text_char`: `\x` is `x` (not before a newline); otherwise any character but a
    /// comment start or a newline. Returns the character and how many were consumed.
    fn text_char(&self) -> Option<(char, usize)> {
        let c = self.peek()?;
        if c == '\\' {
            if let Some(n) = self.at(1) {
                if self.eol_len(self.pos + 1) == 0 {
                    return Some((n, 2));
                }
            }
        }
        if is_comment_start(c) || self.at_eol() {
            return None;
        }
        Some((c, 1))
    }
    /// `+empty_line`: at least one line end, each after optional blanks or a comment.
    fn empty_lines(&mut self) -> Result<(), ParseError> {
        let mut n = 0;
        loop {
            let save = self.pos;
            self.skip();
            self.skip_blanks();
            let l = self.eol_len(self.pos);
            if l == 0 {
                self.pos = save;
                break;
            }
            self.pos += l;
            n += 1;
        }
        if n == 0 {
            return Err(self.error("the end of the line"));
        }
        Ok(())
    }
}

impl ConfFile {
    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, crate::ConfError> {
        let bytes = std::fs::read(path).map_err(|source| crate::ConfError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            crate::ConfError::Parse(ParseError {
                file: path.to_path_buf(),
                line: upto.iter().filter(|&&b| b == b'\n').count() + 1,
                column: upto.iter().rev().take_while(|&&b| b != b'\n').count() + 1,
                expected: "valid UTF-8",
            })
        })?;
        Ok(Self::parse(&text, path)?)
    }

    /// Parses configuration text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ParseError> {
        let mut c = Cursor {
            chars: text.chars().collect(),
            pos: 0,
            file: path,
        };
        let mut conf = ConfFile {
            path: path.to_path_buf(),
            sections: BTreeMap::new(),
        };
        c.skip();
        // Ceph's grammar also takes a file that is one `key = value` line and nothing
        // else, as a key of `[global]`.
        let save = c.pos;
        c.skip_blanks();
        if c.peek().is_some_and(|ch| ch != '[') && !c.at_eol() {
            let (key, line) = parse_key_value(&mut c)?;
            if c.peek().is_some() {
                return Err(c.error("the end of the file"));
            }
            conf.sections
                .entry("global".to_owned())
                .or_default()
                .insert(normalize_key(&key), line);
            return Ok(conf);
        }
        c.pos = save;
        // leading newlines
        loop {
            let l = c.eol_len(c.pos);
            if l == 0 {
                break;
            }
            c.pos += l;
            c.skip();
        }
        while c.peek().is_some() {
            c.skip();
            if c.peek() != Some('[') {
                return Err(c.error("a [section] heading"));
            }
            c.pos += 1;
            let mut heading = String::new();
            while let Some((ch, n)) = c.text_char() {
                if ch == ']' && n == 1 {
                    break;
                }
                heading.push(ch);
                c.pos += n;
                c.skip();
            }
            if heading.is_empty() {
                return Err(c.error("a section name"));
            }
            if c.peek() != Some(']') {
                return Err(c.error("']'"));
            }
            c.pos += 1;
            c.empty_lines()?;
            let section = conf.sections.entry(heading).or_default();
            // key = value lines until the next heading or the end
            loop {
                c.skip();
                let save = c.pos;
                c.skip_blanks();
                // blanks at the very end without a newline are an error in Ceph: leave them
                // to the heading check below
                if matches!(c.peek(), None | Some('[')) {
                    c.pos = save;
                    break;
                }
                let (key, line) = parse_key_value(&mut c)?;
                section.insert(normalize_key(&key), line);
            }
        }
        Ok(conf)
    }

    /// The value of a (normalised) key in one section.
    pub fn get(&self, section: &str, key: &str) -> Option<&ConfLine> {
        self.sections.get(section)?.get(&normalize_key(key))
    }
}

/// `key = value` and the line end(s) after it.
fn parse_key_value(c: &mut Cursor<'_>) -> Result<(String, ConfLine), ParseError> {
    let line = c.line_col(c.pos).0;
    let key = parse_key(c)?;
    c.skip_blanks();
    if c.peek() != Some('=') {
        return Err(c.error("'='"));
    }
    c.pos += 1;
    c.skip_blanks();
    let value = parse_value(c)?;
    c.empty_lines()?;
    Ok((
        key,
        ConfLine {
            value: value.trim().to_owned(),
            line,
        },
    ))
}

fn parse_key(c: &mut Cursor<'_>) -> Result<String, ParseError> {
    let mut key = String::new();
    loop {
        // one word
        let start = key.len();
        while let Some(ch) = c.peek() {
            if ch == '=' || ch == '[' || ch == ' ' {
                break;
            }
            let Some((_, n)) = c.text_char() else { break };
            // raw text: escapes are kept as written
            for i in 0..n {
                if let Some(r) = c.at(i) {
                    key.push(r);
                }
            }
            c.pos += n;
        }
        if key.len() == start {
            if key.is_empty() {
                return Err(c.error("a key"));
            }
            return Ok(key);
        }
        // separator blanks, only if another word follows
        let save = c.pos;
        let mut seps = String::new();
        while let Some(ch) = c.peek().filter(|&ch| is_blank(ch)) {
            seps.push(ch);
            c.pos += 1;
        }
        let next_is_word = !seps.is_empty()
            && c.peek()
                .is_some_and(|ch| ch != '=' && ch != '[' && ch != ' ')
            && c.text_char().is_some();
        if !next_is_word {
            c.pos = save;
            return Ok(key);
        }
        key.push_str(&seps);
    }
}

fn parse_value(c: &mut Cursor<'_>) -> Result<String, ParseError> {
    c.skip();
    if let Some(q @ ('"' | '\'')) = c.peek() {
        c.pos += 1;
        let mut v = String::new();
        while let Some((ch, n)) = c.text_char() {
            if ch == q && n == 1 {
                break;
            }
            v.push(ch);
            c.pos += n;
        }
        if c.peek() != Some(q) {
            return Err(c.error(if q == '"' { "'\"'" } else { "'''" }));
        }
        c.pos += 1;
        return Ok(v);
    }
    let mut v = String::new();
    loop {
        c.skip();
        let Some((ch, n)) = c.text_char() else { break };
        v.push(ch);
        c.pos += n;
    }
    Ok(v)
}
