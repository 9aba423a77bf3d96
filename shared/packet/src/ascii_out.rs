//! Appending short ASCII pieces (integers, JSON keys) to a byte buffer. Integers are itoa's.
//! `put_prefix` has no crate equivalent: a piece built in a fixed-size stack array is appended
//! whole and the buffer cut back to the piece's length, because a fixed-size copy compiles to a
//! few moves where `extend_from_slice` of a run-time length calls `memcpy` (measured: ~14% of
//! the capture-agent's CPU went to such calls for JSON keys).

/// Appends the first `len` bytes of `piece` (`len <= N`).
#[inline(always)]
pub fn put_prefix<const N: usize>(out: &mut Vec<u8>, piece: &[u8; N], len: usize) {
    let start = out.len();
    out.extend_from_slice(piece);
    out.truncate(start + len.min(N));
}

/// Integers appended in decimal, by itoa (what `Display` writes).
pub trait Decimal: Copy {
    fn put_decimal(self, out: &mut Vec<u8>);
}

impl<T: itoa::Integer + Copy> Decimal for T {
    #[inline]
    fn put_decimal(self, out: &mut Vec<u8>) {
        out.extend_from_slice(itoa::Buffer::new().format(self).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decimal<T: Decimal>(value: T) -> String {
        let mut out = b"x".to_vec();
        value.put_decimal(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn edges_match_display() {
        for value in [
            0u64,
            9,
            10,
            99,
            100,
            101,
            999,
            1000,
            65535,
            u64::from(u32::MAX),
        ] {
            assert_eq!(decimal(value), format!("x{value}"));
        }
        assert_eq!(decimal(u64::MAX), format!("x{}", u64::MAX));
        assert_eq!(decimal(i64::MIN), format!("x{}", i64::MIN));
        assert_eq!(decimal(-1i64), "x-1");
        assert_eq!(decimal(255u8), "x255");
    }

    #[test]
    fn prefix_cuts_to_length() {
        let mut out = b"ab".to_vec();
        put_prefix(&mut out, b"cdefgh", 3);
        assert_eq!(out, b"abcde");
        put_prefix(&mut out, b"xy", 9);
        assert_eq!(out, b"abcdexy");
    }

    proptest! {
        #[test]
        fn every_integer_matches_display(unsigned: u64, signed: i64, small: u16) {
            prop_assert_eq!(decimal(unsigned), format!("x{unsigned}"));
            prop_assert_eq!(decimal(signed), format!("x{signed}"));
            prop_assert_eq!(decimal(small), format!("x{small}"));
            // Every digit count, from 1 to 20.
            let shifted = unsigned >> (unsigned % 64);
            prop_assert_eq!(decimal(shifted), format!("x{shifted}"));
        }
    }
}
