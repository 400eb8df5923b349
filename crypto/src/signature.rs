//! AUTH_SIGNATURE: HMAC-SHA256 over the pre-auth transcript (wire reference §5.5).

use aws_lc_rs::hmac;

/// Length of an AUTH_SIGNATURE payload.
pub const SIGNATURE_LEN: usize = 32;

/// The AUTH_SIGNATURE a side sends: HMAC-SHA256 keyed with the raw session key over the exact
/// bytes it *received* before authentication completed. With no session key (auth none) the
/// signature is 32 zero bytes.
pub fn auth_signature(session_key: &[u8], transcript: &[u8]) -> [u8; SIGNATURE_LEN] {
    let mut out = [0u8; SIGNATURE_LEN];
    if session_key.is_empty() {
        return out;
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, session_key);
    out.copy_from_slice(hmac::sign(&key, transcript).as_ref());
    out
}

/// Checks a received AUTH_SIGNATURE against the bytes this side *sent*, in constant time.
pub fn verify_auth_signature(session_key: &[u8], sent_transcript: &[u8], received: &[u8]) -> bool {
    let expected = auth_signature(session_key, sent_transcript);
    received.len() == SIGNATURE_LEN && constant_time_eq(&expected, received)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_zero_and_hmac_matches_rfc4231() {
        assert_eq!(auth_signature(&[], b"anything"), [0u8; 32]);
        assert!(verify_auth_signature(&[], b"x", &[0u8; 32]));
        // RFC 4231 test case 2
        let sig = auth_signature(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(sig[..8], [0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e]);
        assert!(verify_auth_signature(
            b"Jefe",
            b"what do ya want for nothing?",
            &sig
        ));
        assert!(!verify_auth_signature(
            b"Jefe",
            b"what do ya want for nothing!",
            &sig
        ));
    }

    /// Differences in several bytes never cancel out (two flipped copies of one bit).
    #[test]
    fn several_differences_still_differ() {
        let sig = auth_signature(b"Jefe", b"x");
        let mut bad = sig;
        bad[0] ^= 1;
        bad[1] ^= 1;
        assert!(!verify_auth_signature(b"Jefe", b"x", &bad));
        assert!(!verify_auth_signature(b"Jefe", b"x", &sig[..31]));
    }
}
