//! Wire helpers: WebSocket frames (RFC 6455, client side), a tiny JSON cursor for the few
//! fixed packet shapes of the benchmark protocol, and integer formatting.
//!
//! Everything here works on byte slices and appends to caller-owned `Vec`s so the hot path
//! never allocates.

/// The masking key of every client frame. RFC 6455 wants it unpredictable to defeat cache
/// poisoning by proxies; a load generator on loopback has no proxy, so a fixed key is fine.
const MASK: [u8; 4] = [0x5a, 0x3c, 0x96, 0xe1];

pub const OP_CONT: u8 = 0;
pub const OP_TEXT: u8 = 1;
pub const OP_BINARY: u8 = 2;
pub const OP_CLOSE: u8 = 8;
pub const OP_PING: u8 = 9;
pub const OP_PONG: u8 = 10;

/// Appends one final, masked client frame.
pub fn ws_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    let len = payload.len();
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&MASK);
    let start = out.len();
    out.extend_from_slice(payload);
    mask(&mut out[start..]);
}

/// XORs the key over a payload that starts at key offset 0, eight bytes at a time: the binary
/// scenario masks 64 KiB per broadcast.
fn mask(buf: &mut [u8]) {
    let k8 = [
        MASK[0], MASK[1], MASK[2], MASK[3], MASK[0], MASK[1], MASK[2], MASK[3],
    ];
    let k = u64::from_ne_bytes(k8);
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ k).to_ne_bytes());
    }
    // The chunks covered a multiple of 8 bytes, so the remainder starts at key offset 0.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= MASK[i & 3];
    }
}

/// A parsed server frame header.
pub struct FrameHead {
    pub fin: bool,
    pub opcode: u8,
    pub head_len: usize,
    pub len: usize,
}

/// Parses the header of a server frame at the start of `buf`; `Ok(None)` if incomplete.
pub fn parse_frame_head(buf: &[u8], max_len: usize) -> Result<Option<FrameHead>, String> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(format!("WebSocket frame with RSV bits set ({b0:#04x})"));
    }
    if b1 & 0x80 != 0 {
        return Err("masked frame from the server".into());
    }
    let (len, head_len) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                (u64::from_be_bytes(a), 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if len > max_len as u64 {
        return Err(format!("WebSocket frame of {len} bytes (limit {max_len})"));
    }
    Ok(Some(FrameHead {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0f,
        head_len,
        len: len as usize,
    }))
}

/// Appends the decimal digits of `v` (no allocation, unlike `format!`).
pub fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Number of decimal digits of `v`.
pub fn digits(v: u64) -> usize {
    v.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Splits leading ASCII digits off `b` as a number (Socket.IO ack ids, attachment counts,
/// sequence numbers). One pass, no overflow checks needed: 19 digits always fit a u64.
#[inline]
pub fn split_number(b: &[u8]) -> Result<(Option<u64>, &[u8]), String> {
    let mut v: u64 = 0;
    let mut n = 0;
    while let Some(&c) = b.get(n) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if n == 19 {
            return Err("number with more than 19 digits".into());
        }
        v = v * 10 + u64::from(d);
        n += 1;
    }
    Ok(((n > 0).then_some(v), &b[n..]))
}

/// A forward-only reader over a JSON text that only understands what the benchmark packets
/// contain: punctuation, unsigned integers and strings without escapes. Whitespace is
/// skipped everywhere, so a server that pretty-prints still parses.
pub struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Cursor { b, i: 0 }
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.i += 1;
        }
    }

    /// Consumes `c` or fails.
    #[inline]
    pub fn eat(&mut self, c: u8) -> Result<(), String> {
        self.skip_ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!(
                "expected '{}' at byte {} of {}",
                c as char,
                self.i,
                show(self.b)
            ))
        }
    }

    #[inline]
    pub fn u64(&mut self) -> Result<u64, String> {
        self.skip_ws();
        match split_number(&self.b[self.i..])? {
            (Some(v), rest) => {
                self.i = self.b.len() - rest.len();
                Ok(v)
            }
            (None, _) => Err(format!(
                "expected a number at byte {} of {}",
                self.i,
                show(self.b)
            )),
        }
    }

    /// A string's raw bytes, without the quotes. Escapes are not decoded (none of our
    /// strings contain any); a backslash fails so a mangled string cannot pass a check.
    pub fn str(&mut self) -> Result<&'a [u8], String> {
        self.eat(b'"')?;
        let rest = &self.b[self.i..];
        match rest.iter().position(|&c| c == b'"' || c == b'\\') {
            Some(n) if rest[n] == b'"' => {
                self.i += n + 1;
                Ok(&rest[..n])
            }
            _ => Err(format!(
                "unsupported or unterminated string in {}",
                show(self.b)
            )),
        }
    }

    /// Asserts that only whitespace is left.
    pub fn end(&mut self) -> Result<(), String> {
        self.skip_ws();
        if self.i == self.b.len() {
            Ok(())
        } else {
            Err(format!("trailing bytes at {} in {}", self.i, show(self.b)))
        }
    }
}

/// A packet for an error message: lossy UTF-8, cut to 120 bytes.
pub fn show(b: &[u8]) -> String {
    let cut = &b[..b.len().min(120)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if b.len() > cut.len() {
        s.push_str("...");
    }
    format!("{s:?}")
}

/// Whether `needle` occurs in `hay` (short inputs: a naive scan is fastest).
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_mask_and_length() {
        for len in [0usize, 5, 125, 126, 65535, 65536, 70001] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut out = Vec::new();
            ws_frame(&mut out, OP_BINARY, &payload);
            // Parse it back with the mask bit cleared, as a server would send it.
            let mut server = out.clone();
            server[1] &= 0x7f;
            let head = parse_frame_head(&server, 1 << 20).unwrap().unwrap();
            assert!(head.fin);
            assert_eq!(head.opcode, OP_BINARY);
            assert_eq!(head.len, len);
            let key = &out[head.head_len..head.head_len + 4];
            let body: Vec<u8> = out[head.head_len + 4..]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[i % 4])
                .collect();
            assert_eq!(body, payload);
        }
        assert!(parse_frame_head(&[0x81], 10).unwrap().is_none());
        assert!(parse_frame_head(&[0x81, 126, 0], 10).unwrap().is_none());
        assert!(parse_frame_head(&[0x81, 0x85], 10).is_err());
        assert!(parse_frame_head(&[0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0], 10).is_err());
    }

    #[test]
    fn numbers() {
        let mut v = Vec::new();
        for n in [0u64, 9, 10, 12345, u64::MAX] {
            v.clear();
            push_u64(&mut v, n);
            assert_eq!(v, n.to_string().as_bytes());
            assert_eq!(digits(n), v.len());
        }
        assert_eq!(split_number(b"12[").unwrap(), (Some(12), &b"["[..]));
        assert_eq!(split_number(b"[").unwrap(), (None, &b"["[..]));
        assert!(split_number(b"99999999999999999999999").is_err());
    }

    #[test]
    fn cursor() {
        let mut c = Cursor::new(br#" [ "bc" , [12, 34,"xx"]] "#);
        c.eat(b'[').unwrap();
        assert_eq!(c.str().unwrap(), b"bc");
        c.eat(b',').unwrap();
        c.eat(b'[').unwrap();
        assert_eq!(c.u64().unwrap(), 12);
        c.eat(b',').unwrap();
        assert_eq!(c.u64().unwrap(), 34);
        c.eat(b',').unwrap();
        assert_eq!(c.str().unwrap(), b"xx");
        c.eat(b']').unwrap();
        c.eat(b']').unwrap();
        c.end().unwrap();
        assert!(Cursor::new(br#""a\"b""#).str().is_err());
        assert!(Cursor::new(b"x").u64().is_err());
    }
}
