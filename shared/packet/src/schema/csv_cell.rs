//! Writing one CSV cell straight into the output buffer: integers by `ascii_out`, addresses
//! from stack buffers, RFC 4180 quoting only when a text cell needs it. No per-cell allocation.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::ascii_out::Decimal;
use crate::frame::MacAddr;

/// Destination of one cell. In CSV mode text is quoted when it contains `,` `"` CR or LF;
/// in raw mode (for [`super::ColumnSchema::row_cells`]) it is written as is.
pub struct CellOut<'a> {
    buf: &'a mut Vec<u8>,
    quote: bool,
}

impl<'a> CellOut<'a> {
    /// A cell writer for CSV output (quotes text when needed).
    pub fn csv(buf: &'a mut Vec<u8>) -> Self {
        CellOut { buf, quote: true }
    }

    /// A cell writer for unquoted cell text.
    pub fn raw(buf: &'a mut Vec<u8>) -> Self {
        CellOut { buf, quote: false }
    }

    /// An unsigned or signed integer in decimal.
    #[inline]
    pub fn int<I: Decimal>(&mut self, v: I) {
        v.put_decimal(self.buf);
    }

    /// An integer when present, else nothing (empty cell).
    #[inline]
    pub fn opt_int<I: Decimal>(&mut self, v: Option<I>) {
        if let Some(v) = v {
            self.int(v);
        }
    }

    /// A boolean as `0` / `1`.
    #[inline]
    pub fn bool01(&mut self, b: bool) {
        self.buf.push(if b { b'1' } else { b'0' });
    }

    /// A boolean when present, else nothing.
    #[inline]
    pub fn opt_bool01(&mut self, b: Option<bool>) {
        if let Some(b) = b {
            self.bool01(b);
        }
    }

    /// Bytes known to need no quoting (hex, digits, separators we chose).
    #[inline]
    pub fn safe(&mut self, s: &[u8]) {
        self.buf.extend_from_slice(s);
    }

    /// A single byte known to need no quoting.
    #[inline]
    pub fn byte(&mut self, b: u8) {
        self.buf.push(b);
    }

    /// Arbitrary text: quoted (RFC 4180) in CSV mode when it contains `,` `"` CR or LF.
    pub fn text(&mut self, s: &str) {
        let needs_quotes =
            self.quote && s.bytes().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'));
        if !needs_quotes {
            self.buf.extend_from_slice(s.as_bytes());
            return;
        }
        self.buf.push(b'"');
        for part in s.split_inclusive('"') {
            self.buf.extend_from_slice(part.as_bytes());
            if part.ends_with('"') {
                self.buf.push(b'"');
            }
        }
        self.buf.push(b'"');
    }

    /// A timestamp in nanoseconds since the epoch as RFC 3339 UTC with 9 fractional digits.
    #[inline]
    pub fn ts_rfc3339(&mut self, ts_ns: i64) {
        super::timefmt::write_rfc3339_ns(self.buf, ts_ns);
    }

    /// A MAC address `aa:bb:cc:dd:ee:ff`.
    #[inline]
    pub fn mac(&mut self, mac: &MacAddr) {
        let mut b = [0u8; 17];
        mac.write_to(&mut b);
        self.buf.extend_from_slice(&b);
    }

    /// An IPv4 address in dotted decimal.
    #[inline]
    pub fn ipv4(&mut self, addr: Ipv4Addr) {
        write_ipv4(self.buf, addr);
    }

    /// An IPv6 address in its RFC 5952 text form (as `Ipv6Addr`'s Display), via a stack buffer.
    pub fn ipv6(&mut self, addr: &Ipv6Addr) {
        let mut b = StackBuf::<48>::new();
        // An IPv6 address is at most 45 characters, so this cannot overflow.
        if write!(b, "{addr}").is_ok() {
            self.buf.extend_from_slice(b.as_bytes());
        }
    }
}

/// Writes `a.b.c.d` without going through `fmt`.
pub fn write_ipv4(out: &mut Vec<u8>, addr: Ipv4Addr) {
    let octets = addr.octets();
    for (i, o) in octets.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        let o = *o;
        if o >= 100 {
            out.push(b'0' + o / 100);
            out.push(b'0' + (o / 10) % 10);
            out.push(b'0' + o % 10);
        } else if o >= 10 {
            out.push(b'0' + o / 10);
            out.push(b'0' + o % 10);
        } else {
            out.push(b'0' + o);
        }
    }
}

/// A fixed-capacity `fmt::Write` sink on the stack.
pub struct StackBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackBuf<N> {
    pub fn new() -> Self {
        StackBuf {
            buf: [0; N],
            len: 0,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> Default for StackBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> std::fmt::Write for StackBuf<N> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(f: impl FnOnce(&mut CellOut)) -> String {
        let mut v = Vec::new();
        f(&mut CellOut::csv(&mut v));
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn text_is_quoted_only_when_needed() {
        assert_eq!(csv(|o| o.text("example.com")), "example.com");
        assert_eq!(csv(|o| o.text("a,b")), "\"a,b\"");
        assert_eq!(csv(|o| o.text("say \"hi\"")), "\"say \"\"hi\"\"\"");
        assert_eq!(csv(|o| o.text("x\ny")), "\"x\ny\"");
        assert_eq!(csv(|o| o.text("\r")), "\"\r\"");
        let mut v = Vec::new();
        CellOut::raw(&mut v).text("a,\"b\"");
        assert_eq!(v, b"a,\"b\"");
    }

    #[test]
    fn ipv4_matches_std_for_edge_octets() {
        for a in [
            [0, 0, 0, 0],
            [255, 255, 255, 255],
            [10, 0, 2, 15],
            [9, 99, 100, 199],
        ] {
            let addr = Ipv4Addr::from(a);
            assert_eq!(csv(|o| o.ipv4(addr)), addr.to_string());
        }
        // Every octet value in every position.
        for x in 0..=255u8 {
            let addr = Ipv4Addr::new(x, 255 - x, x / 2, x.wrapping_mul(7));
            assert_eq!(csv(|o| o.ipv4(addr)), addr.to_string());
        }
    }

    #[test]
    fn ipv6_matches_std() {
        for s in [
            "::",
            "::1",
            "fe80::1",
            "2001:db8::ff00:42:8329",
            "::ffff:10.0.0.1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            let a: Ipv6Addr = s.parse().unwrap();
            assert_eq!(csv(|o| o.ipv6(&a)), a.to_string());
        }
    }

    #[test]
    fn integers_and_booleans() {
        assert_eq!(csv(|o| o.int(u64::MAX)), "18446744073709551615");
        assert_eq!(csv(|o| o.int(-5i64)), "-5");
        assert_eq!(csv(|o| o.opt_int::<u16>(None)), "");
        assert_eq!(csv(|o| o.bool01(true)), "1");
        assert_eq!(csv(|o| o.opt_bool01(Some(false))), "0");
    }
}
