//! Keyring files (and, re-exported from [`crate::key`], `CryptoKey`).
//!
//! A Ceph secret is a [`CryptoKey`] of type `aes` (1, base64 `AQ…`) or `aes256k` (2, base64
//! `Ag…`, what Ceph 20 creates).
//!
//! A [`Keyring`] is the INI-like file `ceph-authtool` writes:
//!
//! ```text
//! [client.admin]
//!     key = AQBoRQJrRyhnIBAArCL0sy7QfbXHGr4T4dk1mQ==
//!     caps mon = "allow *"
//! ```
//!
//! Parsing follows Ceph's `ConfFile` grammar as used by `KeyRing::decode_plaintext`: `;` and
//! `#` start comments (also after a value), values may be quoted with `"` or `'`, a backslash
//! escapes the next character, a backslash at the end of a line continues it, key names are
//! trimmed and runs of whitespace or underscores are equivalent (`caps mon`, `caps_mon`), the
//! `[global]` section is ignored, `auid` lines are ignored, and any other key is an error. A
//! repeated key or section merges, the last value winning.
//!
//! A well-formed key we cannot use (a key type other than `aes` and `aes256k`, or a secret of
//! the wrong length for its type) does not fail the whole keyring: its entry is left out with
//! a `tracing` warning naming it, and remembered, so that asking for exactly that entity
//! ([`Keyring::key`]) gives a typed error ([`KeyringError::UnusableKey`]) rather than "no
//! such entity". Text that is not a key at all (bad base64, truncated) still fails the parse.
//!
//! Secrets never appear in `Debug` output; writing a keyring back out is an explicit call.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use msgr2_codec::entity::EntityName;
use thiserror::Error;

pub(crate) use crate::key::utime_now;
pub use crate::key::{
    CryptoKey, KeyError, KeyType, AES256K_KEY_ENCODED_LEN, AES256K_KEY_LEN, AES_KEY_LEN,
    CRYPTO_AES, CRYPTO_AES256KRB5, CRYPTO_KEY_ENCODED_LEN,
};

/// One keyring entry: an entity's key and its capabilities.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyringEntry {
    /// The entity, e.g. `client.admin`.
    pub name: EntityName,
    /// Its secret.
    pub key: CryptoKey,
    /// Capabilities by service (`mon` → `allow *`), in Ceph's (sorted) order.
    pub caps: BTreeMap<String, String>,
}

impl fmt::Debug for KeyringEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringEntry")
            .field("name", &self.name.to_string())
            .field("key", &self.key)
            .field("caps", &self.caps)
            .finish()
    }
}

/// Why a keyring could not be loaded or parsed.
#[derive(Debug, Error)]
pub enum KeyringError {
    /// The file could not be read or written.
    #[error("keyring {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text does not follow the keyring grammar.
    #[error("keyring line {line}: {msg}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        msg: &'static str,
    },
    /// A section name is not a valid entity name.
    #[error("keyring line {line}: bad entity name {name:?}")]
    BadEntityName {
        /// 1-based line number.
        line: usize,
        /// The section name.
        name: String,
    },
    /// A `key = …` value is not a key encoding at all (bad base64, truncated, trailing bytes).
    #[error("keyring line {line}: bad key for [{entity}]: {source}")]
    BadKey {
        /// 1-based line number.
        line: usize,
        /// The section.
        entity: String,
        /// Why the key was rejected.
        source: KeyError,
    },
    /// A key name other than `key`, `caps <service>` or `auid`.
    #[error("keyring line {line}: unknown setting {setting:?} in [{entity}]")]
    UnknownSetting {
        /// 1-based line number.
        line: usize,
        /// The section.
        entity: String,
        /// The normalised key name.
        setting: String,
    },
    /// A section has caps but no key.
    #[error("keyring section [{0}] has no key")]
    MissingKey(String),
    /// The entity's key is well-formed but of a type or length we cannot use (its entry was
    /// skipped when the keyring was parsed).
    #[error("keyring line {line}: unusable key for [{entity}]: {source}")]
    UnusableKey {
        /// 1-based line number of the `key = …` line.
        line: usize,
        /// The section.
        entity: String,
        /// Why the key cannot be used.
        source: KeyError,
    },
    /// The keyring has no entry for the entity.
    #[error("keyring has no entry for {0}")]
    NoEntry(String),
}

/// An entry left out of a [`Keyring`] because its key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusableEntry {
    /// The entity.
    pub name: EntityName,
    /// 1-based line number of its `key = …` line.
    pub line: usize,
    /// Why its key cannot be used.
    pub error: KeyError,
}

/// A set of entity keys and caps, as in a Ceph keyring file.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Keyring {
    /// Ordered like Ceph's `map<EntityName, EntityAuth>`: by type value, then id.
    entries: BTreeMap<(u8, String), KeyringEntry>,
    /// Entries skipped at parse time, by the same order.
    unusable: BTreeMap<(u8, String), UnusableEntry>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.entries.values()).finish()
    }
}

fn sort_key(name: &EntityName) -> (u8, String) {
    (name.ty as u8, name.id.clone())
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads and parses a keyring file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, KeyringError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| KeyringError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses keyring text (see the module documentation for the grammar).
    pub fn parse(text: &str) -> Result<Self, KeyringError> {
        parse_keyring(text)
    }

    /// The key of `name`, if present.
    pub fn get(&self, name: &EntityName) -> Option<&CryptoKey> {
        self.entries.get(&sort_key(name)).map(|e| &e.key)
    }

    /// The key of `name`, or why there is none: [`KeyringError::UnusableKey`] if its entry was
    /// skipped at parse time, [`KeyringError::NoEntry`] if there is no such entry.
    pub fn key(&self, name: &EntityName) -> Result<&CryptoKey, KeyringError> {
        if let Some(k) = self.get(name) {
            return Ok(k);
        }
        match self.unusable.get(&sort_key(name)) {
            Some(u) => Err(KeyringError::UnusableKey {
                line: u.line,
                entity: u.name.to_string(),
                source: u.error.clone(),
            }),
            None => Err(KeyringError::NoEntry(name.to_string())),
        }
    }

    /// Entries left out at parse time because their keys cannot be used, in Ceph's order.
    pub fn unusable(&self) -> impl Iterator<Item = &UnusableEntry> {
        self.unusable.values()
    }

    /// The whole entry of `name` (key and caps), if present.
    pub fn entry(&self, name: &EntityName) -> Option<&KeyringEntry> {
        self.entries.get(&sort_key(name))
    }

    /// The caps string of `name` for `service` (`"mon"`, `"osd"`, …), if any.
    pub fn caps(&self, name: &EntityName, service: &str) -> Option<&str> {
        self.entry(name)
            .and_then(|e| e.caps.get(service))
            .map(String::as_str)
    }

    /// Adds or replaces `name`'s key, keeping existing caps.
    pub fn insert(&mut self, name: EntityName, key: CryptoKey) {
        match self.entries.get_mut(&sort_key(&name)) {
            Some(e) => e.key = key,
            None => {
                self.unusable.remove(&sort_key(&name));
                self.entries.insert(
                    sort_key(&name),
                    KeyringEntry {
                        name,
                        key,
                        caps: BTreeMap::new(),
                    },
                );
            }
        }
    }

    /// Sets `name`'s caps for `service`; returns false (and does nothing) if `name` has no key.
    pub fn set_caps(&mut self, name: &EntityName, service: &str, caps: &str) -> bool {
        match self.entries.get_mut(&sort_key(name)) {
            Some(e) => {
                e.caps.insert(service.to_owned(), caps.to_owned());
                true
            }
            None => false,
        }
    }

    /// Removes `name`; returns its entry.
    pub fn remove(&mut self, name: &EntityName) -> Option<KeyringEntry> {
        self.entries.remove(&sort_key(name))
    }

    /// All entries, in Ceph's order.
    pub fn iter(&self) -> impl Iterator<Item = &KeyringEntry> {
        self.entries.values()
    }

    /// Number of entities.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the keyring is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The file text, byte-identical to Ceph's `KeyRing::print` (tab-indented `key = …` and
    /// `caps <svc> = "…"` lines). Contains secrets: write it only to protected files.
    pub fn to_keyring_string(&self) -> String {
        let mut out = String::new();
        for e in self.entries.values() {
            out.push('[');
            out.push_str(&e.name.to_string());
            out.push_str("]\n\tkey = ");
            out.push_str(&e.key.to_base64());
            out.push('\n');
            for (svc, caps) in &e.caps {
                out.push_str("\tcaps ");
                out.push_str(svc);
                out.push_str(" = \"");
                out.push_str(&caps.replace('"', "\\\""));
                out.push_str("\"\n");
            }
        }
        out
    }

    /// Writes the keyring to `path` (mode 0600 on Unix when the file is created).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), KeyringError> {
        use std::io::Write;
        let path = path.as_ref();
        let io = |source| KeyringError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(io)?;
        f.write_all(self.to_keyring_string().as_bytes()).map_err(io)
    }
}

impl std::str::FromStr for Keyring {
    type Err = KeyringError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

// ---------------------------------------------------------------------------------------------
// Parser

/// A physical line after joining backslash-newline continuations, with its first line number.
struct Line {
    no: usize,
    text: String,
}

fn logical_lines(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 1;
    for (i, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if cur.is_empty() {
            start = i + 1;
        }
        // An odd number of trailing backslashes means the newline is escaped.
        let trailing = raw.bytes().rev().take_while(|&b| b == b'\\').count();
        if trailing % 2 == 1 {
            cur.push_str(&raw[..raw.len() - 1]);
            continue;
        }
        cur.push_str(raw);
        out.push(Line {
            no: start,
            text: std::mem::take(&mut cur),
        });
    }
    if !cur.is_empty() {
        out.push(Line {
            no: start,
            text: cur,
        });
    }
    out
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_comment_start(c: char) -> bool {
    c == '#' || c == ';'
}

/// True if `rest` is only blanks, optionally followed by a comment.
fn only_comment(rest: &str) -> bool {
    let t = rest.trim_start_matches(is_blank);
    t.is_empty() || t.starts_with(is_comment_start)
}

/// Reads Ceph `text_char`s (a backslash escapes the next character) until `stop` matches or a
/// comment starts; returns the text and the unread remainder (starting at the stop
/// character, or empty at the end of the line).
fn read_text(s: &str, stop: impl Fn(char) -> bool) -> (String, &str) {
    let mut out = String::new();
    let mut it = s.char_indices();
    while let Some((i, c)) = it.next() {
        if c == '\\' {
            match it.next() {
                Some((_, n)) => out.push(n),
                None => return (out, ""),
            }
            continue;
        }
        if stop(c) || is_comment_start(c) {
            return (out, &s[i..]);
        }
        out.push(c);
    }
    (out, "")
}

/// Ceph's key normalisation (`trim_fill_if(k, "_", isspace)` then `_` → space): trimmed, and
/// every run of whitespace or underscores equivalent to one space.
fn normalize_key(k: &str) -> String {
    let mut out = String::new();
    for word in k
        .split(|c: char| c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.replace('_', " ")
}

/// A key we could decode but not use: (line, error).
type Unusable = (usize, KeyError);

struct Section {
    name: EntityName,
    key: Option<Result<CryptoKey, Unusable>>,
    caps: BTreeMap<String, String>,
}

fn parse_keyring(text: &str) -> Result<Keyring, KeyringError> {
    let syntax = |line, msg| KeyringError::Syntax { line, msg };
    // Sections merge by name, as in ConfFile.
    let mut sections: Vec<Section> = Vec::new();
    // Index into `sections` of the current section; `None` for `[global]`-like skipped ones.
    let mut current: Option<Option<usize>> = None;
    for Line { no, text } in logical_lines(text) {
        let t = text.trim_start_matches(is_blank);
        if t.is_empty() || t.starts_with(is_comment_start) {
            continue;
        }
        if let Some(rest) = t.strip_prefix('[') {
            let (name, after) = read_text(rest, |c| c == ']');
            let after = after.strip_prefix(']').ok_or(syntax(no, "expected ']'"))?;
            if !only_comment(after) {
                return Err(syntax(no, "unexpected text after section name"));
            }
            if name.is_empty() {
                return Err(syntax(no, "empty section name"));
            }
            if name == "global" {
                current = Some(None);
                continue;
            }
            let ename: EntityName = name.parse().map_err(|_| KeyringError::BadEntityName {
                line: no,
                name: name.clone(),
            })?;
            let idx = match sections.iter().position(|s| s.name == ename) {
                Some(i) => i,
                None => {
                    sections.push(Section {
                        name: ename,
                        key: None,
                        caps: BTreeMap::new(),
                    });
                    sections.len() - 1
                }
            };
            current = Some(Some(idx));
            continue;
        }
        // key = value
        let (raw_key, rest) = read_text(t, |c| c == '=' || c == '[');
        let rest = rest
            .strip_prefix('=')
            .ok_or(syntax(no, "expected 'key = value'"))?;
        let key = normalize_key(&raw_key);
        if key.is_empty() {
            return Err(syntax(no, "empty key name"));
        }
        let rest = rest.trim_start_matches(is_blank);
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let (v, after) = read_text(&rest[1..], |c| c == q);
                let after = after
                    .strip_prefix(q)
                    .ok_or(syntax(no, "unterminated quoted value"))?;
                if !only_comment(after) {
                    return Err(syntax(no, "unexpected text after quoted value"));
                }
                v
            }
            _ => read_text(rest, |_| false).0,
        };
        let value = value.trim().to_owned();
        let Some(sect) = current else {
            return Err(syntax(no, "setting outside of a section"));
        };
        let Some(idx) = sect else { continue };
        let s = &mut sections[idx];
        let entity = s.name.to_string();
        if key == "key" {
            s.key = Some(match CryptoKey::from_base64(&value) {
                Ok(k) => Ok(k),
                // Well-formed, but of a type or length we cannot use: skip the entry.
                Err(e @ (KeyError::UnsupportedType(_) | KeyError::BadLength { .. })) => {
                    Err((no, e))
                }
                Err(source) => {
                    return Err(KeyringError::BadKey {
                        line: no,
                        entity,
                        source,
                    })
                }
            });
        } else if let Some(svc) = key.strip_prefix("caps ") {
            s.caps.insert(svc.to_owned(), value);
        } else if key == "auid" {
            // Ignored, as by Ceph, so old keyrings still load.
        } else {
            return Err(KeyringError::UnknownSetting {
                line: no,
                entity,
                setting: key,
            });
        }
    }
    let mut kr = Keyring::new();
    for s in sections {
        let key = match s.key {
            None => return Err(KeyringError::MissingKey(s.name.to_string())),
            Some(Ok(k)) => k,
            Some(Err((line, error))) => {
                tracing::warn!(
                    entity = %s.name,
                    line,
                    %error,
                    "keyring: skipping [{}], its key cannot be used",
                    s.name
                );
                kr.unusable.insert(
                    sort_key(&s.name),
                    UnusableEntry {
                        name: s.name,
                        line,
                        error,
                    },
                );
                continue;
            }
        };
        kr.entries.insert(
            sort_key(&s.name),
            KeyringEntry {
                name: s.name,
                key,
                caps: s.caps,
            },
        );
    }
    Ok(kr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        assert_eq!(normalize_key("  caps   mon "), "caps mon");
        assert_eq!(normalize_key("caps_mon"), "caps mon");
        assert_eq!(normalize_key("key"), "key");
    }
}
