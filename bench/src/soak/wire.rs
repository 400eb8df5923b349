//! The soak messages: their front, how payloads are shaped from the seed, and the check
//! every received message goes through.

use super::*;

pub(super) const MAGIC: u32 = 0x4b41_4f53; // "SOAK"
pub(super) const FLAG_LOSSY: u32 = 1;
pub(super) const FRONT_LEN: usize = 48;

/// Client → server: checked payload.
pub(super) const T_DATA: u16 = 0x5301;
/// Server → client: checked payload acknowledging a DATA.
pub(super) const T_ECHO: u16 = 0x5302;
/// Client → server: the end (front: JSON `{"sent": N}`).
pub(super) const T_FIN: u16 = 0x5303;
/// Server → client: the server's findings (front: JSON).
pub(super) const T_FIN_ACK: u16 = 0x5304;
/// Client → server: done, the server may exit.
pub(super) const T_BYE: u16 = 0x5305;

/// Stream ids (they select the size distribution).
pub(super) const S_DATA: u64 = 1;
pub(super) const S_ECHO: u64 = 2;

/// Bytes of the pattern pool: the largest payload plus the offsets' spread.
pub(super) const POOL_SPREAD: usize = 4096;
pub(super) const MAX_PAYLOAD: usize = 4 << 20;
/// Sequence numbers beyond this are treated as corrupt (bounds the bitmap).
pub(super) const MAX_SEQ: u64 = 1 << 34;

pub(super) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The fixed pattern every payload is a slice of (the same in every process).
pub(super) fn pool() -> Arc<Vec<u8>> {
    let len = MAX_PAYLOAD + POOL_SPREAD;
    let mut v = Vec::with_capacity(len + 8);
    let mut i = 0u64;
    while v.len() < len {
        v.extend_from_slice(&mix(i ^ 0x50a4_50a4).to_le_bytes());
        i += 1;
    }
    v.truncate(len);
    Arc::new(v)
}

/// Length and pool offset of message `seq` of `stream`: mixed sizes from 0 B to `max`.
pub(super) fn shape(seed: u64, stream: u64, seq: u64, max: usize) -> (usize, usize) {
    let h = mix(seed ^ stream.rotate_left(56) ^ mix(seq));
    let h2 = mix(h);
    let r = h % 100;
    let (lo, hi): (u64, u64) = match stream {
        S_DATA => match r {
            0..=4 => (0, 0),
            5..=39 => (1, 256),
            40..=69 => (257, 4096),
            70..=91 => (4097, 65536),
            92..=98 => (65537, 262_144),
            _ => (262_145, 1 << 20),
        },
        _ => match r {
            0..=9 => (0, 0),
            10..=59 => (1, 256),
            60..=89 => (257, 4096),
            _ => (4097, 65536),
        },
    };
    let len = (lo + h2 % (hi - lo + 1)).min(max as u64) as usize;
    let off = ((h2 >> 40) % POOL_SPREAD as u64) as usize;
    (len, off)
}

pub(super) fn put32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}
pub(super) fn put64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}
pub(super) fn get32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}
pub(super) fn get64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// A DATA or ECHO message.
pub(super) fn make(
    msg_type: u16,
    flags: u32,
    seq: u64,
    aux: u64,
    len: usize,
    off: usize,
    pool: &[u8],
) -> Message {
    let data = pool[off..off + len].to_vec();
    let dcrc = crc32c(0xffff_ffff, &data);
    let mut front = Vec::with_capacity(FRONT_LEN);
    put32(&mut front, MAGIC);
    put32(&mut front, flags);
    put64(&mut front, seq);
    put64(&mut front, aux);
    put64(&mut front, len as u64);
    put64(&mut front, off as u64);
    put32(&mut front, dcrc);
    let fcrc = crc32c(0xffff_ffff, &front);
    put32(&mut front, fcrc);
    let mut m = Message::new(msg_type, 1, 1, front);
    m.header.tid = seq;
    m.data = data.into();
    m
}

/// What a checked DATA/ECHO message carries.
pub(super) struct Parsed {
    pub(super) flags: u32,
    pub(super) seq: u64,
    pub(super) aux: u64,
    pub(super) len: u64,
}

/// Checks a DATA/ECHO message's front and payload; the error describes the corruption.
pub(super) fn check(msg: &Message, pool: &[u8]) -> Result<Parsed, String> {
    let f = &msg.front;
    if f.len() != FRONT_LEN {
        return Err(format!("front of {} bytes", f.len()));
    }
    if get32(f, 0) != MAGIC {
        return Err("bad magic".into());
    }
    if crc32c(0xffff_ffff, &f[..FRONT_LEN - 4]) != get32(f, FRONT_LEN - 4) {
        return Err("front crc mismatch".into());
    }
    let p = Parsed {
        flags: get32(f, 4),
        seq: get64(f, 8),
        aux: get64(f, 16),
        len: get64(f, 24),
    };
    let off = get64(f, 32);
    if p.seq == 0 || p.seq > MAX_SEQ {
        return Err(format!("sequence {} out of range", p.seq));
    }
    if msg.data.len() as u64 != p.len {
        return Err(format!(
            "message {}: {} data bytes, front says {}",
            p.seq,
            msg.data.len(),
            p.len
        ));
    }
    if crc32c(0xffff_ffff, &msg.data) != get32(f, 40) {
        return Err(format!("message {}: data crc mismatch", p.seq));
    }
    let ok = usize::try_from(off)
        .ok()
        .and_then(|o| pool.get(o..o.checked_add(msg.data.len())?))
        .is_some_and(|s| s == msg.data.as_slice());
    if !ok {
        return Err(format!(
            "message {}: payload differs from its pattern",
            p.seq
        ));
    }
    if msg.header.tid != p.seq {
        return Err(format!("message {}: tid {}", p.seq, msg.header.tid));
    }
    Ok(p)
}

/// A control message with a JSON front.
pub(super) fn control(msg_type: u16, v: &Value) -> Message {
    Message::new(msg_type, 1, 1, v.to_string().into_bytes())
}
