//! Appending short ASCII pieces (integers, JSON keys) to a byte buffer. A piece is built in a
//! fixed-size stack array and the whole array is appended, then the buffer is cut back to the
//! piece's length: a fixed-size copy compiles to a few moves, where `extend_from_slice` of a
//! run-time length calls `memcpy` (measured: ~14% of the capture-agent's CPU went to such calls
//! for JSON keys and numbers).

/// Appends the first `len` bytes of `piece` (`len <= N`).
#[inline(always)]
pub fn put_prefix<const N: usize>(out: &mut Vec<u8>, piece: &[u8; N], len: usize) {
    let start = out.len();
    out.extend_from_slice(piece);
    out.truncate(start + len.min(N));
}

/// Two ASCII digits for each value 0..100.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Appends `value` in decimal (what `itoa` and `Display` write).
#[inline]
pub fn put_u64(out: &mut Vec<u8>, value: u64) {
    let len = value.checked_ilog10().map_or(1, |log| log as usize + 1);
    let mut digits = [b'0'; 20];
    let mut rest = value;
    let mut end = len;
    while rest >= 100 {
        let pair = (rest % 100) as usize * 2;
        rest /= 100;
        end -= 2;
        digits[end] = DIGIT_PAIRS[pair];
        digits[end + 1] = DIGIT_PAIRS[pair + 1];
    }
    if rest >= 10 {
        let pair = rest as usize * 2;
        digits[0] = DIGIT_PAIRS[pair];
        digits[1] = DIGIT_PAIRS[pair + 1];
    } else {
        digits[0] = b'0' + rest as u8;
    }
    put_prefix(out, &digits, len);
}

/// Appends `value` in decimal with a leading `-` when negative.
#[inline]
pub fn put_i64(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    put_u64(out, value.unsigned_abs());
}

/// Integers written in decimal by [`put_u64`] / [`put_i64`].
pub trait Decimal: Copy {
    fn put_decimal(self, out: &mut Vec<u8>);
}

/// `Decimal` for each of the integer types, widened losslessly to what `$put` takes.
macro_rules! decimal {
    ($put:ident as $wide:ty: $($t:ty),*) => {$(
        impl Decimal for $t {
            #[inline]
            fn put_decimal(self, out: &mut Vec<u8>) {
                $put(out, self as $wide);
            }
        }
    )*};
}
decimal!(put_u64 as u64: u8, u16, u32, u64, usize);
decimal!(put_i64 as i64: i8, i16, i32, i64);

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
