//! crc32c exactly as Ceph computes it.
//!
//! Ceph's `ceph_crc32c(seed, data)` is the raw Castagnoli update (reflected polynomial
//! `0x82F63B78`): `seed` is the initial register and the final register is returned as is, with
//! no pre- or post-inversion. msgr2 uses seed 0 for the preamble and seed `0xFFFFFFFF` for every
//! segment. The SIMD implementation comes from `crc-fast` (PCLMULQDQ/AVX-512/VPCLMULQDQ on
//! x86-64, PMULL on aarch64, chosen at run time).

use crc_fast::{CrcAlgorithm, Digest};

/// Seed Ceph uses for the 28 bytes of a frame preamble.
pub const PREAMBLE_SEED: u32 = 0;
/// Seed Ceph uses for each frame segment (written `-1` in Ceph's sources).
pub const SEGMENT_SEED: u32 = 0xFFFF_FFFF;

/// `ceph_crc32c(seed, data)`: the raw crc32c register after feeding `data` starting from `seed`.
///
/// Chaining works like Ceph's: `crc32c(crc32c(s, a), b) == crc32c(s, a ++ b)`.
#[inline]
pub fn crc32c(seed: u32, data: &[u8]) -> u32 {
    if data.is_empty() {
        return seed;
    }
    let mut d = Digest::new_with_init_state(CrcAlgorithm::Crc32Iscsi, u64::from(seed));
    d.update(data);
    // `get_state` is the register before the algorithm's final xor: exactly Ceph's value.
    d.get_state() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden vectors from the wire reference, §0.4 (verified against real Ceph).
    #[test]
    fn golden_vectors() {
        assert_eq!(crc32c(0, b"123456789"), 0x58e3_fa20);
        assert_eq!(crc32c(0xFFFF_FFFF, b"123456789"), 0x1cf9_6d7c);
        assert_eq!(crc32c(0xFFFF_FFFF, b""), 0xffff_ffff);
        assert_eq!(!crc32c(0xFFFF_FFFF, b"123456789"), 0xe306_9283);
    }

    #[test]
    fn chaining_matches_one_shot() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + 3) as u8).collect();
        for split in [0, 1, 15, 16, 17, 4095, 4096, 9999, 10_000] {
            let (a, b) = data.split_at(split);
            assert_eq!(crc32c(crc32c(7, a), b), crc32c(7, &data), "split {split}");
        }
    }

    /// Cross-check the SIMD path against a bitwise reference on many lengths.
    #[test]
    fn matches_bitwise_reference() {
        fn reference(mut crc: u32, data: &[u8]) -> u32 {
            for &b in data {
                crc ^= u32::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 != 0 {
                        (crc >> 1) ^ 0x82F6_3B78
                    } else {
                        crc >> 1
                    };
                }
            }
            crc
        }
        let data: Vec<u8> = (0..3000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in (0..300).chain([511, 512, 513, 1024, 2047, 3000]) {
            for seed in [0u32, 0xFFFF_FFFF, 0x1234_5678] {
                assert_eq!(
                    crc32c(seed, &data[..len]),
                    reference(seed, &data[..len]),
                    "len {len}"
                );
            }
        }
    }
}
