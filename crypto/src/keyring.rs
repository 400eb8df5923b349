//! Keyring files and `CryptoKey`.
//!
//! A Ceph secret is a [`CryptoKey`]: a key type (only `CEPH_CRYPTO_AES` = 1 is supported), a
//! creation time and a 16-byte AES-128 secret. Its binary encoding (`u16 type, utime created,
//! u16 len, secret`, 28 bytes) is what keyring files carry in base64 (40 characters starting
//! with `AQ`) and what cephx embeds in tickets.
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
//! Secrets never appear in `Debug` output; writing a keyring back out is an explicit call.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use msgr2_codec::encoding::{DecodeError, Decoder, Encode};
use msgr2_codec::entity::EntityName;
use msgr2_codec::payload::UTime;
use thiserror::Error;

/// `CEPH_CRYPTO_AES`: the only key type cephx uses.
pub const CRYPTO_AES: u16 = 1;
/// Length of an AES-128 secret.
pub const AES_KEY_LEN: usize = 16;
/// Length of the binary encoding of an AES [`CryptoKey`].
pub const CRYPTO_KEY_ENCODED_LEN: usize = 2 + 8 + 2 + AES_KEY_LEN;

/// Standard base64 that, like Ceph's `ceph_unarmor`, does not insist on `=` padding.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a key could not be decoded or generated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The text is not valid base64.
    #[error("key is not valid base64")]
    Base64,
    /// The encoding ended early.
    #[error("key encoding truncated: {0} bytes, need {CRYPTO_KEY_ENCODED_LEN}")]
    Truncated(usize),
    /// Bytes follow the secret.
    #[error("{0} trailing bytes after the key encoding")]
    TrailingBytes(usize),
    /// The key type is not `CEPH_CRYPTO_AES`.
    #[error("unsupported key type {0} (only AES = 1 is supported)")]
    UnsupportedType(u16),
    /// The secret is not 16 bytes.
    #[error("AES secret must be {AES_KEY_LEN} bytes, not {0}")]
    BadLength(u16),
    /// The system random generator failed.
    #[error("random number generator failed")]
    Random,
}

/// A Ceph `CryptoKey` of type AES: creation time plus a 16-byte AES-128 secret.
///
/// `Debug` shows only the creation time; use [`CryptoKey::secret`] or
/// [`CryptoKey::to_base64`] explicitly when the secret itself is needed.
#[derive(Clone, PartialEq, Eq)]
pub struct CryptoKey {
    /// When the key was created (informational; part of the encoding).
    pub created: UTime,
    secret: [u8; AES_KEY_LEN],
}

impl fmt::Debug for CryptoKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoKey")
            .field("type", &"aes")
            .field("created", &self.created)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl CryptoKey {
    /// A key from its parts.
    pub fn new(created: UTime, secret: [u8; AES_KEY_LEN]) -> Self {
        Self { created, secret }
    }

    /// A fresh random key created now (what `ceph-authtool --gen-key` and the mon's
    /// `generate_secret` produce).
    pub fn generate() -> Result<Self, KeyError> {
        let mut secret = [0u8; AES_KEY_LEN];
        aws_lc_rs::rand::fill(&mut secret).map_err(|_| KeyError::Random)?;
        Ok(Self {
            created: utime_now(),
            secret,
        })
    }

    /// The raw 16-byte AES secret (the HMAC key of AUTH_SIGNATURE for session keys).
    pub fn secret(&self) -> &[u8; AES_KEY_LEN] {
        &self.secret
    }

    /// Appends Ceph's encoding: `u16 type, utime created, u16 len, secret`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(CRYPTO_AES);
        out.put_u32(self.created.sec);
        out.put_u32(self.created.nsec);
        out.put_u16(AES_KEY_LEN as u16);
        out.extend_from_slice(&self.secret);
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(CRYPTO_KEY_ENCODED_LEN);
        self.encode(&mut v);
        v
    }

    /// Decodes a key embedded in a cephx structure; a non-AES type or a secret that is not 16
    /// bytes is [`DecodeError::InvalidValue`].
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let ty = d.u16("CryptoKey type")?;
        if ty != CRYPTO_AES {
            return Err(DecodeError::InvalidValue {
                what: "CryptoKey type",
                value: u64::from(ty),
            });
        }
        let created = UTime {
            sec: d.u32("CryptoKey created")?,
            nsec: d.u32("CryptoKey created")?,
        };
        let len = d.u16("CryptoKey len")?;
        if usize::from(len) != AES_KEY_LEN {
            return Err(DecodeError::InvalidValue {
                what: "CryptoKey len",
                value: u64::from(len),
            });
        }
        let secret = d.array::<AES_KEY_LEN>("CryptoKey secret")?;
        Ok(Self { created, secret })
    }

    /// Decodes exactly one key encoding (no trailing bytes), with a keyring-oriented error.
    pub fn from_bytes(b: &[u8]) -> Result<Self, KeyError> {
        if b.len() < 12 {
            return Err(KeyError::Truncated(b.len()));
        }
        let ty = u16::from_le_bytes([b[0], b[1]]);
        if ty != CRYPTO_AES {
            return Err(KeyError::UnsupportedType(ty));
        }
        let len = u16::from_le_bytes([b[10], b[11]]);
        if usize::from(len) != AES_KEY_LEN {
            return Err(KeyError::BadLength(len));
        }
        if b.len() < CRYPTO_KEY_ENCODED_LEN {
            return Err(KeyError::Truncated(b.len()));
        }
        if b.len() > CRYPTO_KEY_ENCODED_LEN {
            return Err(KeyError::TrailingBytes(b.len() - CRYPTO_KEY_ENCODED_LEN));
        }
        let mut d = Decoder::new(b);
        Self::decode(&mut d).map_err(|_| KeyError::Truncated(b.len()))
    }

    /// Parses the base64 form used in keyring files and `--key` options (surrounding
    /// whitespace is ignored).
    pub fn from_base64(s: &str) -> Result<Self, KeyError> {
        let bytes = B64.decode(s.trim()).map_err(|_| KeyError::Base64)?;
        Self::from_bytes(&bytes)
    }

    /// The base64 form (`AQ…`, 40 characters), as written in keyring files.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.to_bytes())
    }
}

/// The current wall-clock time as a `utime_t` (saturating at the `u32` range).
pub(crate) fn utime_now() -> UTime {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    UTime {
        sec: u32::try_from(d.as_secs()).unwrap_or(u32::MAX),
        nsec: d.subsec_nanos(),
    }
}

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
    /// A `key = …` value is not a valid AES key.
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
}

/// A set of entity keys and caps, as in a Ceph keyring file.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Keyring {
    /// Ordered like Ceph's `map<EntityName, EntityAuth>`: by type value, then id.
    entries: BTreeMap<(u8, String), KeyringEntry>,
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

struct Section {
    name: EntityName,
    key: Option<CryptoKey>,
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
            let k = CryptoKey::from_base64(&value).map_err(|source| KeyringError::BadKey {
                line: no,
                entity,
                source,
            })?;
            s.key = Some(k);
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
        let key = s
            .key
            .ok_or_else(|| KeyringError::MissingKey(s.name.to_string()))?;
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

    const ADMIN: &str = "AQBoRQJrRyhnIBAArCL0sy7QfbXHGr4T4dk1mQ==";

    #[test]
    fn key_base64_round_trip() {
        let k = CryptoKey::from_base64(ADMIN).unwrap();
        assert_eq!(k.to_base64(), ADMIN);
        assert_eq!(k.to_bytes().len(), CRYPTO_KEY_ENCODED_LEN);
        let dbg = format!("{k:?}");
        assert!(dbg.contains("redacted"));
        assert!(!dbg.to_lowercase().contains("ac22f4"));
    }

    #[test]
    fn key_errors() {
        assert_eq!(CryptoKey::from_base64("not base64!"), Err(KeyError::Base64));
        assert_eq!(CryptoKey::from_base64("AQBo"), Err(KeyError::Truncated(3)));
        // type 2
        let mut b = CryptoKey::from_base64(ADMIN).unwrap().to_bytes();
        b[0] = 2;
        assert_eq!(CryptoKey::from_bytes(&b), Err(KeyError::UnsupportedType(2)));
        b[0] = 1;
        b[10] = 32;
        assert_eq!(CryptoKey::from_bytes(&b), Err(KeyError::BadLength(32)));
        b[10] = 16;
        b.push(0);
        assert_eq!(CryptoKey::from_bytes(&b), Err(KeyError::TrailingBytes(1)));
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalize_key("  caps   mon "), "caps mon");
        assert_eq!(normalize_key("caps_mon"), "caps mon");
        assert_eq!(normalize_key("key"), "key");
    }
}
