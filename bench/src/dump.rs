//! `msgr2 dump`: decode a captured connection, one line (or JSON object) per frame.
//!
//! The two directions are decoded separately (a capture has no interleaving information).
//! The server's AUTH_DONE tells the connection mode; in secure mode everything after the mode
//! switch is AES-GCM ciphertext. With `--keyring` (cephx logins to a mon) the client's key
//! opens AUTH_DONE, which yields the connection secret, and the rest is decrypted and
//! decoded too; without it the ciphertext is reported as one item.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use msgr2_codec::banner::{Banner, BANNER_PREFIX_LEN};
use msgr2_codec::encoding::Decoder;
use msgr2_codec::entity::EntityName;
use msgr2_codec::frame::{Frame, Limits, Tag};
use msgr2_codec::msg::{msg_type_name, MsgHeader2};
use msgr2_codec::payload::{self, Control, CON_MODE_SECURE};
use msgr2_codec::Revision;
use msgr2_crypto::cephx::parse_mon_auth_done;
use msgr2_crypto::keyring::Keyring;
use msgr2_crypto::secure::{ConnectionSecret, Role};
use msgr2_proto::framing::RxFraming;
use serde_json::{json, Map, Value};
use thiserror::Error;

/// Why a dump failed.
#[derive(Debug, Error)]
pub enum DumpError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A stream could not be decoded.
    #[error("{dir}: cannot decode at offset {offset}: {reason}")]
    Decode {
        /// `c2s` or `s2c`.
        dir: &'static str,
        /// Byte offset in that stream.
        offset: usize,
        /// What was wrong.
        reason: String,
    },
}

fn err(dir: &'static str, offset: usize, reason: impl ToString) -> DumpError {
    DumpError::Decode {
        dir,
        offset,
        reason: reason.to_string(),
    }
}

/// One decoded item of a stream.
struct Item {
    offset: usize,
    len: usize,
    fields: Map<String, Value>,
}

/// What one direction decoded to.
struct Stream {
    banner: Banner,
    items: Vec<Item>,
}

/// Decodes both files and prints them.
pub fn run(c2s: &Path, s2c: &Path, keyring: Option<&Path>, json: bool) -> Result<(), DumpError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| DumpError::Read {
            path: p.into(),
            source,
        })
    };
    let (c2s_bytes, s2c_bytes) = (read(c2s)?, read(s2c)?);
    let c_banner = banner("c2s", &c2s_bytes)?;
    let s_banner = banner("s2c", &s2c_bytes)?;
    let rev = Banner::negotiate(&c_banner, &s_banner).map_err(|e| err("s2c", 0, e))?;
    // The server's frames tell when the mode switches and to what: right after its AUTH_DONE,
    // and on the client side right after its answer to the last server auth reply.
    let s_switch = |seen: &Seen| seen.con_mode == Some(CON_MODE_SECURE);
    let server = decode_stream("s2c", &s2c_bytes, rev, s_banner, &s_switch, None)?;
    let replies = server.1.clone();
    let secure = replies.con_mode == Some(CON_MODE_SECURE);
    let c_switch = |seen: &Seen| secure && seen.auth_requests >= replies.auth_replies;
    let mut client = decode_stream("c2s", &c2s_bytes, rev, c_banner, &c_switch, None)?;
    let mut server = server;
    if let (true, Some(path)) = (secure, keyring) {
        let secret = connection_secret(path, &client.1, &replies)?;
        let rx = |role| {
            RxFraming::secure(&secret, role, rev, Limits::default()).map_err(|e| err("s2c", 0, e))
        };
        server = decode_stream(
            "s2c",
            &s2c_bytes,
            rev,
            s_banner,
            &s_switch,
            Some(rx(Role::Client)?),
        )?;
        client = decode_stream(
            "c2s",
            &c2s_bytes,
            rev,
            c_banner,
            &c_switch,
            Some(rx(Role::Server)?),
        )?;
    }
    for (dir, stream) in [("c2s", &client.0), ("s2c", &server.0)] {
        print_stream(dir, stream, rev, secure, json);
    }
    Ok(())
}

fn banner(dir: &'static str, b: &[u8]) -> Result<Banner, DumpError> {
    let mut prefix = [0u8; BANNER_PREFIX_LEN];
    let head = b
        .get(..BANNER_PREFIX_LEN)
        .ok_or_else(|| err(dir, 0, "stream shorter than a banner"))?;
    prefix.copy_from_slice(head);
    let len = Banner::decode_prefix(&prefix).map_err(|e| err(dir, 0, e))?;
    let payload = b
        .get(BANNER_PREFIX_LEN..BANNER_PREFIX_LEN + len)
        .ok_or_else(|| err(dir, BANNER_PREFIX_LEN, "banner payload truncated"))?;
    Banner::decode_payload(payload).map_err(|e| err(dir, BANNER_PREFIX_LEN, e))
}

/// Auth progress seen in one direction, used to locate the mode switch.
#[derive(Default, Clone)]
struct Seen {
    auth_requests: usize,
    auth_replies: usize,
    con_mode: Option<u32>,
    /// The first AUTH_REQUEST's auth payload (names the client).
    first_request: Option<Vec<u8>>,
    /// AUTH_DONE's auth payload.
    auth_done: Option<Vec<u8>>,
}

/// The connection secret of a cephx mon login: the client's key (from the keyring, by the
/// name in AUTH_REQUEST) opens AUTH_DONE.
fn connection_secret(
    keyring: &Path,
    client: &Seen,
    server: &Seen,
) -> Result<ConnectionSecret, DumpError> {
    let kr = Keyring::load(keyring)
        .map_err(|e| err("c2s", 0, format!("keyring {}: {e}", keyring.display())))?;
    let req = client
        .first_request
        .as_deref()
        .ok_or_else(|| err("c2s", 0, "no AUTH_REQUEST before the mode switch"))?;
    let mut d = Decoder::new(req);
    let name = d
        .u8("auth mode")
        .and_then(|_| EntityName::decode(&mut d))
        .map_err(|e| err("c2s", 0, format!("AUTH_REQUEST payload: {e}")))?;
    let key = kr
        .key(&name)
        .map_err(|e| err("c2s", 0, format!("{}: {e}", keyring.display())))?;
    let done = server
        .auth_done
        .as_deref()
        .ok_or_else(|| err("s2c", 0, "no AUTH_DONE"))?;
    let reply = parse_mon_auth_done(key, None, done)
        .map_err(|e| err("s2c", 0, format!("AUTH_DONE with {name}'s key: {e}")))?;
    let secret = reply
        .connection_secret
        .ok_or_else(|| err("s2c", 0, "AUTH_DONE carries no connection secret"))?;
    ConnectionSecret::new(&secret).map_err(|e| err("s2c", 0, e))
}

fn decode_stream(
    dir: &'static str,
    bytes: &[u8],
    rev: Revision,
    banner: Banner,
    encrypted_after: &dyn Fn(&Seen) -> bool,
    mut secure: Option<RxFraming>,
) -> Result<(Stream, Seen), DumpError> {
    let mut dec = RxFraming::crc(rev, Limits::default());
    let mut seen = Seen::default();
    let mut items = Vec::new();
    let mut pos = BANNER_PREFIX_LEN + 16;
    while pos < bytes.len() {
        let (used, frame) = dec.feed(&bytes[pos..]).map_err(|e| err(dir, pos, e))?;
        let Some(frame) = frame else {
            return Err(err(
                dir,
                pos,
                format!("stream ends inside a frame ({} bytes left)", used),
            ));
        };
        let fields = describe(&frame).map_err(|e| err(dir, pos, e))?;
        match Control::decode(frame.tag(), frame.segment(0)) {
            Ok(Control::AuthDone(d)) => {
                seen.con_mode = Some(d.con_mode);
                seen.auth_done = Some(d.auth_payload);
            }
            Ok(Control::AuthRequest(r)) if seen.first_request.is_none() => {
                seen.first_request = Some(r.auth_payload);
            }
            _ => {}
        }
        match frame.tag() {
            Tag::AuthRequest | Tag::AuthRequestMore => seen.auth_requests += 1,
            Tag::AuthBadMethod | Tag::AuthReplyMore => seen.auth_replies += 1,
            Tag::AuthDone => seen.auth_replies += 1,
            _ => {}
        }
        items.push(Item {
            offset: pos,
            len: used,
            fields,
        });
        pos += used;
        if encrypted_after(&seen) && matches!(dec, RxFraming::Crc(_)) {
            match secure.take() {
                Some(rx) => dec = rx,
                None => break,
            }
        }
    }
    if pos < bytes.len() {
        let mut fields = Map::new();
        fields.insert("frame".into(), "ENCRYPTED".into());
        fields.insert("mode".into(), "secure".into());
        fields.insert(
            "note".into(),
            "AES-128-GCM ciphertext after the mode switch".into(),
        );
        items.push(Item {
            offset: pos,
            len: bytes.len() - pos,
            fields,
        });
    }
    Ok((Stream { banner, items }, seen))
}

/// Decoded fields of one frame, in wire order.
fn describe(frame: &Frame<msgr2_codec::Data>) -> Result<Map<String, Value>, String> {
    let mut m = Map::new();
    let tag = frame.tag();
    m.insert("frame".into(), tag.name().into());
    let lens: Vec<Value> = frame
        .preamble
        .counted()
        .iter()
        .map(|s| s.len.into())
        .collect();
    m.insert("segments".into(), lens.into());
    if tag == Tag::Message {
        let h = MsgHeader2::decode(frame.segment(0)).map_err(|e| e.to_string())?;
        m.insert("type".into(), format!("{:#x}", h.msg_type).into());
        if let Some(name) = msg_type_name(h.msg_type) {
            m.insert("type_name".into(), name.into());
        }
        m.insert("seq".into(), h.seq.into());
        m.insert("tid".into(), h.tid.into());
        m.insert("priority".into(), h.priority.into());
        m.insert("version".into(), h.version.into());
        m.insert("compat_version".into(), h.compat_version.into());
        m.insert("ack_seq".into(), h.ack_seq.into());
        m.insert("flags".into(), h.flags.into());
        m.insert("data_off".into(), h.data_off.into());
        return Ok(m);
    }
    let c = Control::decode(tag, frame.segment(0)).map_err(|e| format!("{tag} payload: {e}"))?;
    let list =
        |v: &[u32], f: fn(u32) -> String| Value::from(v.iter().map(|x| f(*x)).collect::<Vec<_>>());
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    match &c {
        Control::Hello(p) => {
            put("entity_type", p.entity_type.as_str().into());
            put("peer_addr", p.peer_addr.to_string().into());
        }
        Control::AuthRequest(p) => {
            put("method", method_name(p.method).into());
            put("preferred_modes", list(&p.preferred_modes, mode_name));
            put("auth_payload_len", p.auth_payload.len().into());
        }
        Control::AuthBadMethod(p) => {
            put("method", method_name(p.method).into());
            put("result", p.result.into());
            put("allowed_methods", list(&p.allowed_methods, method_name));
            put("allowed_modes", list(&p.allowed_modes, mode_name));
        }
        Control::AuthReplyMore(payload::AuthReplyMore { auth_payload })
        | Control::AuthRequestMore(payload::AuthRequestMore { auth_payload }) => {
            put("auth_payload_len", auth_payload.len().into());
        }
        Control::AuthDone(p) => {
            put("global_id", p.global_id.into());
            put("con_mode", mode_name(p.con_mode).into());
            put("auth_payload_len", p.auth_payload.len().into());
        }
        Control::AuthSignature(p) => put("sha256", hex(&p.sha256).into()),
        Control::ClientIdent(p) => {
            put("addrs", p.addrs.to_string().into());
            put("target_addr", p.target_addr.to_string().into());
            put("gid", p.gid.into());
            put("global_seq", p.global_seq.into());
            put(
                "supported_features",
                format!("{:#x}", p.supported_features).into(),
            );
            put(
                "required_features",
                format!("{:#x}", p.required_features).into(),
            );
            put("flags", p.flags.into());
            put("client_cookie", format!("{:#x}", p.client_cookie).into());
        }
        Control::ServerIdent(p) => {
            put("addrs", p.addrs.to_string().into());
            put("gid", p.gid.into());
            put("global_seq", p.global_seq.into());
            put(
                "supported_features",
                format!("{:#x}", p.supported_features).into(),
            );
            put(
                "required_features",
                format!("{:#x}", p.required_features).into(),
            );
            put("flags", p.flags.into());
            put("server_cookie", format!("{:#x}", p.server_cookie).into());
        }
        Control::IdentMissingFeatures(p) => put("features", format!("{:#x}", p.features).into()),
        Control::SessionReconnect(p) => {
            put("addrs", p.addrs.to_string().into());
            put("client_cookie", format!("{:#x}", p.client_cookie).into());
            put("server_cookie", format!("{:#x}", p.server_cookie).into());
            put("global_seq", p.global_seq.into());
            put("connect_seq", p.connect_seq.into());
            put("msg_seq", p.msg_seq.into());
        }
        Control::SessionReset(p) => put("full", p.full.into()),
        Control::SessionRetry(p) => put("connect_seq", p.connect_seq.into()),
        Control::SessionRetryGlobal(p) => put("global_seq", p.global_seq.into()),
        Control::SessionReconnectOk(p) => put("msg_seq", p.msg_seq.into()),
        Control::Wait(_) => {}
        Control::Keepalive2(payload::Keepalive2 { timestamp })
        | Control::Keepalive2Ack(payload::Keepalive2Ack { timestamp }) => {
            put(
                "timestamp",
                format!("{}.{:09}", timestamp.sec, timestamp.nsec).into(),
            );
        }
        Control::Ack(p) => put("seq", p.seq.into()),
        Control::CompressionRequest(p) => {
            put("is_compress", p.is_compress.into());
            put("preferred_methods", p.preferred_methods.clone().into());
        }
        Control::CompressionDone(p) => {
            put("is_compress", p.is_compress.into());
            put("method", p.method.into());
        }
    }
    Ok(m)
}

fn method_name(m: u32) -> String {
    match m {
        payload::AUTH_NONE => "none".into(),
        payload::AUTH_CEPHX => "cephx".into(),
        other => other.to_string(),
    }
}

fn mode_name(m: u32) -> String {
    match m {
        payload::CON_MODE_CRC => "crc".into(),
        CON_MODE_SECURE => "secure".into(),
        other => other.to_string(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

fn print_stream(dir: &str, s: &Stream, rev: Revision, secure: bool, json: bool) {
    let revision = match rev {
        Revision::Rev0 => "msgr2.0",
        Revision::Rev1 => "msgr2.1",
    };
    let mode = if secure { "secure" } else { "crc" };
    if json {
        let b = json!({"dir": dir, "offset": 0, "len": BANNER_PREFIX_LEN + 16, "frame": "BANNER",
            "supported_features": format!("{:#x}", s.banner.supported),
            "required_features": format!("{:#x}", s.banner.required),
            "revision": revision, "mode": mode});
        println!("{b}");
    } else {
        println!(
            "{dir} @ {:>6}: BANNER supported_features={:#x} required_features={:#x} revision={revision} mode={mode}",
            0, s.banner.supported, s.banner.required
        );
    }
    for it in &s.items {
        if json {
            let mut m = Map::new();
            m.insert("dir".into(), dir.into());
            m.insert("offset".into(), it.offset.into());
            m.insert("len".into(), it.len.into());
            m.extend(it.fields.clone());
            println!("{}", Value::Object(m));
        } else {
            let mut line = format!("{dir} @ {:>6}:", it.offset);
            for (k, v) in &it.fields {
                match (k.as_str(), v) {
                    ("frame", Value::String(s)) => {
                        let _ = write!(line, " {s:<22}");
                    }
                    (_, Value::String(s)) => {
                        let _ = write!(line, " {k}={s}");
                    }
                    _ => {
                        let _ = write!(line, " {k}={v}");
                    }
                }
            }
            let _ = write!(line, " ({} bytes)", it.len);
            println!("{line}");
        }
    }
}
