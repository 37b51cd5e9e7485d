//! A strict JSON cursor for the fast paths (`fast.rs`): it reads the
//! plain forms a client writes (strings without escapes, numbers as JSON
//! spells them) straight from the bytes, and answers `None` on anything
//! else, valid JSON or not, so that the caller gives the body to the
//! general path, which reads everything JSON allows and names what is
//! wrong. serde's generic machinery, a visitor per value and an owned or
//! escaped string per key, was most of a one-row request's parsing.

/// A position in a JSON body.
#[derive(Clone)]
pub struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Scan { bytes, at: 0 }
    }

    #[inline]
    fn skip_space(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte that is not white space, not consumed.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.bytes.get(self.at).copied()
    }

    /// Consumes `byte` when it is next.
    #[inline]
    pub fn eat(&mut self, byte: u8) -> bool {
        let next = self.peek() == Some(byte);
        self.at += usize::from(next);
        next
    }

    /// `byte`, or `None`.
    #[inline]
    pub fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// Consumes the literal `word` (`null`, `true`, `false`) when it is next.
    #[inline]
    pub fn word(&mut self, word: &[u8]) -> bool {
        self.skip_space();
        let next = self.bytes[self.at..].starts_with(word);
        self.at += if next { word.len() } else { 0 };
        next
    }

    /// How many bytes have been read.
    pub fn position(&self) -> usize {
        self.at
    }

    /// The body's bytes from `from` to `to` (positions it has passed).
    pub fn between(&self, from: usize, to: usize) -> &'a [u8] {
        &self.bytes[from.min(to)..to.min(self.bytes.len())]
    }

    /// Consumes `bytes` when the body goes on with exactly them.
    #[inline]
    pub fn literal(&mut self, bytes: &[u8]) -> bool {
        let next = self.rest().starts_with(bytes);
        self.at += if next { bytes.len() } else { 0 };
        next
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        &self.bytes[self.at..]
    }

    /// Skips `n` bytes the caller has matched in `rest()`.
    pub fn advance(&mut self, n: usize) {
        self.at = (self.at + n).min(self.bytes.len());
    }

    /// Nothing but white space left.
    pub fn end(&mut self) -> Option<()> {
        (self.peek().is_none()).then_some(())
    }

    /// A string without escapes, borrowed from the body.
    #[inline]
    pub fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.raw_str()?).ok()
    }

    /// The bytes of a string without escapes: for keys and names compared
    /// with ASCII ones, which need no UTF-8 check.
    #[inline]
    pub fn raw_str(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let start = self.at;
        let len = plain_len(&self.bytes[start..])?;
        let end = start + len;
        if self.bytes[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        Some(&self.bytes[start..end])
    }

    /// A number as JSON writes it (no `+`, no leading zeros, digits on both
    /// sides of a point), finite, correctly rounded.
    pub fn number(&mut self) -> Option<f64> {
        self.skip_space();
        self.number_here()
    }

    /// [`number`](Self::number) at the cursor, white space already skipped
    /// (after a [`peek`](Self::peek)). The common form, digits with a
    /// point and no exponent, is read here; the rest by
    /// [`number_in_full`](Self::number_in_full), kept apart so that this
    /// stays small enough to inline into a caller's loop.
    #[inline(always)]
    pub fn number_here(&mut self) -> Option<f64> {
        let d = Decimal::read(self.bytes, self.at)?;
        let (places, at) = (d.places.unwrap_or(0), d.end);
        let exponent = matches!(self.bytes.get(at), Some(b'e' | b'E'));
        if d.places != Some(0) && !exponent && d.exact() && places < EXACT_TENS.len() {
            // Clinger's fast path, as in `exact`.
            self.at = at;
            let magnitude = d.mantissa as f64 / EXACT_TENS[places];
            return Some(if d.negative { -magnitude } else { magnitude });
        }
        self.number_in_full()
    }

    /// Any number JSON allows at the cursor (after its white space):
    /// exponents, and digits past what an f64 holds exactly.
    #[cold]
    #[inline(never)]
    fn number_in_full(&mut self) -> Option<f64> {
        let d = Decimal::read(self.bytes, self.at)?;
        let mut scale = match d.places {
            Some(0) => return None,
            places => -(places.unwrap_or(0) as i64),
        };
        self.at = d.end;
        if let Some(b'e' | b'E') = self.bytes.get(self.at) {
            self.at += 1;
            scale += self.exponent()?;
        }
        let magnitude = match exact(d.exact(), d.mantissa, scale) {
            Some(v) => v,
            // ASCII by construction.
            None => std::str::from_utf8(&self.bytes[d.start..self.at]).ok()?.parse::<f64>().ok()?,
        };
        let v = if d.negative { -magnitude } else { magnitude };
        v.is_finite().then_some(v)
    }

    /// The exponent after `e`: a sign, then at least one digit.
    fn exponent(&mut self) -> Option<i64> {
        let minus = self.bytes.get(self.at) == Some(&b'-');
        self.at += usize::from(matches!(self.bytes.get(self.at), Some(b'+' | b'-')));
        let from = self.at;
        let mut e = 0i64;
        while let Some(&b @ b'0'..=b'9') = self.bytes.get(self.at) {
            // Far past any f64 already; kept from overflowing.
            e = (e * 10 + i64::from(b - b'0')).min(1 << 20);
            self.at += 1;
        }
        (self.at > from).then_some(if minus { -e } else { e })
    }

    /// A whole number without sign, fraction or exponent (a shape's size).
    pub fn count(&mut self) -> Option<u64> {
        self.skip_space();
        let mut n = 0u64;
        match self.bytes.get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                while let Some(&b @ b'0'..=b'9') = self.bytes.get(self.at) {
                    n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
                    self.at += 1;
                }
            }
            _ => return None,
        }
        match self.bytes.get(self.at) {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(n),
        }
    }

    /// `[item, ...]`, `item` reading each element.
    pub fn list(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.expect(b'[')?;
        if self.eat(b']') {
            return Some(());
        }
        loop {
            item(self)?;
            if self.eat(b']') {
                return Some(());
            }
            self.expect(b',')?;
        }
    }

    /// `{"key": value, ...}`, `field` reading each value after its key.
    pub fn object(&mut self, mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            let key = self.raw_str()?;
            self.expect(b':')?;
            field(self, key)?;
            if self.eat(b'}') {
                return Some(());
            }
            self.expect(b',')?;
        }
    }

    /// Any value the cursor can read (plain strings, numbers, literals,
    /// lists and objects of them, nested at most `depth` deep), ignored.
    pub fn skip(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.str().map(drop),
            b'[' if depth > 0 => self.list(|s| s.skip(depth - 1)),
            b'{' if depth > 0 => self.object(|s, _| s.skip(depth - 1)),
            _ if self.word(b"null") || self.word(b"true") || self.word(b"false") => Some(()),
            _ => self.number().map(drop),
        }
    }
}

/// Where the first `"`, `\\` or control character of `bytes` is: eight
/// bytes a step (a word's bytes compared at once), the rest one by one.
pub(crate) fn plain_len(bytes: &[u8]) -> Option<usize> {
    const HIGHS: u64 = ONES << 7;
    // A byte's high bit set where it is zero (below 0x20 for `controls`);
    // the lowest such bit is exact, borrows only spoiling the bytes after.
    let zeros = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let controls = |x: u64| x.wrapping_sub(ONES * 0x20) & !x & HIGHS;
    let mut at = 0;
    while let Some(word) = bytes.get(at..at + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        let w = u64::from_le_bytes(word);
        let found = zeros(w ^ (ONES * u64::from(b'"'))) | zeros(w ^ (ONES * u64::from(b'\\'))) | controls(w);
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    bytes[at..].iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).map(|p| at + p)
}

/// The part of a number before its exponent: a sign, the integer digits
/// (one `0` or no leading zero), and the digits after a point if there is
/// one, all read into one mantissa.
struct Decimal {
    negative: bool,
    /// Where the digits start (after the sign).
    start: usize,
    /// Where the digits end.
    end: usize,
    mantissa: u64,
    /// Digits after the point; `None` without a point.
    places: Option<usize>,
}

impl Decimal {
    // Always inlined: a call was a third of the cost of reading a short number.
    #[inline(always)]
    fn read(bytes: &[u8], at: usize) -> Option<Decimal> {
        let negative = bytes.get(at) == Some(&b'-');
        let start = at + usize::from(negative);
        let mut mantissa = 0u64;
        let mut end = match bytes.get(start) {
            Some(b'0') => start + 1,
            Some(b'1'..=b'9') => digits(bytes, start, &mut mantissa),
            _ => return None,
        };
        let mut places = None;
        if bytes.get(end) == Some(&b'.') {
            let from = end + 1;
            end = digits(bytes, from, &mut mantissa);
            places = Some(end - from);
        }
        Some(Decimal { negative, start, end, mantissa, places })
    }

    /// Whether the mantissa holds every digit read (19 digits cannot wrap
    /// a u64) and is exactly an f64.
    #[inline]
    fn exact(&self) -> bool {
        let digits = self.end - self.start - usize::from(self.places.is_some());
        digits <= 19 && self.mantissa <= 1 << 53
    }
}

/// Reads the decimal digits from `at` on into `mantissa` (wrapping past
/// 19 digits: the caller then does not use it); where they end. Eight
/// bytes a step while eight are left, the rest one by one. Inlined into
/// the loops over a body's numbers, as `Decimal::read` is.
#[inline(always)]
fn digits(bytes: &[u8], mut at: usize, mantissa: &mut u64) -> usize {
    let mut m = *mantissa;
    while let Some(word) = bytes.get(at..at + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        let w = u64::from_le_bytes(word);
        let n = leading_digits(w);
        if n == 0 {
            *mantissa = m;
            return at;
        }
        let values = w.wrapping_sub(ONES * u64::from(b'0')) << (8 * (8 - n));
        m = m.wrapping_mul(TENS_U64[n]).wrapping_add(eight_digits(values));
        at += n;
        if n < 8 {
            *mantissa = m;
            return at;
        }
    }
    while let Some(&b) = bytes.get(at) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        m = m.wrapping_mul(10).wrapping_add(u64::from(d));
        at += 1;
    }
    *mantissa = m;
    at
}

const ONES: u64 = u64::from_le_bytes([1; 8]);
const TENS_U64: [u64; 9] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/// How many of the eight bytes of `w` (first byte lowest) are decimal
/// digits before the first that is not. A byte below `0` borrows when `0`
/// is taken from it, one above `9` carries into its high bit when 0x46 is
/// added, and one of 0x80 or more has it already; carries and borrows only
/// reach the bytes after, so the lowest flagged byte is exact.
#[inline]
fn leading_digits(w: u64) -> usize {
    let flagged = (w.wrapping_sub(ONES * 0x30) | w.wrapping_add(ONES * 0x46) | w) & (ONES << 7);
    (flagged.trailing_zeros() / 8) as usize
}

/// The number eight digit values (0–9 a byte, the first digit the lowest
/// byte) write, in three multiplications: pairs, then fours, then the
/// eight. Leading zero bytes are leading zeros.
#[inline]
fn eight_digits(values: u64) -> u64 {
    const LOW: u64 = 0x0000_00ff_0000_00ff;
    let pairs = values.wrapping_mul(10).wrapping_add(values >> 8);
    let fours = (pairs & LOW).wrapping_mul(100 + (1_000_000 << 32));
    let rest = ((pairs >> 16) & LOW).wrapping_mul(1 + (10_000 << 32));
    fours.wrapping_add(rest) >> 32
}

/// Powers of ten an f64 holds exactly.
const EXACT_TENS: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// `mantissa × 10^scale` when both factors are exact f64s (Clinger's fast
/// path: the mantissa read whole, at most 2^53, and a power of ten up to
/// 10^22): one multiplication or division, so one rounding, so the
/// correctly rounded value. What clients write is almost always this; the
/// rest goes to the full parser.
#[inline]
fn exact(exact_mantissa: bool, mantissa: u64, scale: i64) -> Option<f64> {
    if !exact_mantissa {
        return None;
    }
    let power = EXACT_TENS.get(usize::try_from(scale.unsigned_abs()).ok()?).copied()?;
    let m = mantissa as f64;
    Some(if scale >= 0 { m * power } else { m / power })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `text` read as a number alone, and as one with bytes after it (so
    /// that the word-at-a-time digit reading has room): the same, or a panic.
    fn number(text: &str) -> Option<f64> {
        let read = |t: &str| {
            let mut s = Scan::new(t.as_bytes());
            let v = s.number()?;
            s.end().map(|()| v)
        };
        let (alone, padded) = (read(text), read(&format!("{text}         ")));
        assert_eq!(alone.map(f64::to_bits), padded.map(f64::to_bits), "{text}, alone and with bytes after it");
        alone
    }

    #[test]
    fn numbers_are_read_as_json_spells_them_or_not_at_all() {
        assert_eq!(number("0"), Some(0.0));
        assert_eq!(number(" -12.5e-1 "), Some(-1.25));
        assert_eq!(number("1E3"), Some(1000.0));
        assert!(number("-0").is_some_and(|v| v == 0.0 && v.is_sign_negative()));
        for refused in ["+1", "01", ".5", "5.", "1e", "1e+", "-", "NaN", "Infinity", "1e400", "0x10", "1_000", ""] {
            assert_eq!(number(refused), None, "{refused}");
        }
    }

    #[test]
    fn strings_with_escapes_or_control_characters_are_left_to_the_general_path() {
        assert_eq!(Scan::new(br#" "f0" "#).str(), Some("f0"));
        assert_eq!(Scan::new("\"bé\"".as_bytes()).str(), Some("bé"));
        assert_eq!(Scan::new(br#""a\"b""#).str(), None);
        assert_eq!(Scan::new(b"\"a\nb\"").str(), None);
        assert_eq!(Scan::new(b"\"open").str(), None);
        assert_eq!(Scan::new(b"\"\xff\"").str(), None);
    }

    #[test]
    fn lists_objects_and_skipped_values_follow_the_grammar() {
        let mut seen = Vec::new();
        let mut s = Scan::new(br#"{"a": [1, 2], "b": {"c": [null, true, "x"]}, "d": []}"#);
        let read = s.object(|s, key| {
            seen.push(key);
            s.skip(4)
        });
        assert_eq!((read, s.end()), (Some(()), Some(())));
        assert_eq!(seen, [b"a", b"b", b"d"]);
        for refused in [&b"[1, 2,]"[..], b"[1 2]", b"{\"a\" 1}", b"{\"a\": 1,}", b"[[[[[[1]]]]]]", b"[1"] {
            assert_eq!(Scan::new(refused).skip(4), None, "{}", String::from_utf8_lossy(refused));
        }
    }

    #[test]
    fn short_and_long_numbers_alike_are_correctly_rounded() {
        for text in [
            "0.1",
            "0.000001234",
            "1e22",
            "1e23",
            "9007199254740993",
            "123456789012345678",
            "4.9e-324",
            "2.2250738585072014e-308",
            "0e500",
            "1.7976931348623157e308",
            "-0.0",
            "100000000000000000000000",
            "9007199254740992e-22",
            "9007199254740993e-3",
            "0.9007199254740993",
            "1234567890123456789",
            "12345678901234567890",
            "18446744073709551621",
            "1844674407370955162.1",
            "0.18446744073709551621",
            "0.00000000000000000001",
        ] {
            let theirs: f64 = serde_json::from_str(text).unwrap();
            assert_eq!(number(text).map(f64::to_bits), Some(theirs.to_bits()), "{text}");
        }
    }

    proptest! {
        /// The word-at-a-time search finds what a byte-at-a-time one does.
        #[test]
        fn the_end_of_a_plain_string_is_found_as_byte_by_byte(bytes in proptest::collection::vec(
            prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x20, 0x20u8..=0xff], 0..40)) {
            let naive = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            prop_assert_eq!(plain_len(&bytes), naive);
        }


        /// Short decimals, the fast path's own ground, read to the bit as
        /// serde_json reads them.
        #[test]
        fn short_decimals_read_as_serde_json_reads_them(m in 0u64..1_000_000_000_000_000, places in 0usize..25,
                                                         e in -30i32..30, negative: bool) {
            let digits = m.to_string();
            let text = match places.min(digits.len()) {
                0 => digits.clone(),
                p => format!("{}.{}", &digits[..digits.len() - p], &digits[digits.len() - p..]),
            };
            let text = format!("{}{}e{e}", if negative { "-" } else { "" }, text.strip_prefix('.').map_or(text.clone(), |t| format!("0.{t}")));
            let theirs: f64 = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(number(&text).map(f64::to_bits), Some(theirs.to_bits()), "{}", text);
        }


        /// Decimals without an exponent, most clients' numbers, read to
        /// the bit as serde_json reads them, whatever follows them.
        #[test]
        fn decimals_without_exponent_read_as_serde_json_reads_them(whole in 0u64..100_000_000_000, fraction in 0u64..10_000_000_000,
                                                                  places in 1usize..11, negative: bool, after in "[],} \n]{0,9}") {
            let text = format!("{}{whole}.{:0places$}", if negative { "-" } else { "" }, fraction % 10u64.pow(places as u32));
            let theirs: f64 = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(number(&text).map(f64::to_bits), Some(theirs.to_bits()), "{}", text);
            let body = format!("{text}{after}");
            let mut s = Scan::new(body.as_bytes());
            prop_assert_eq!(s.number().map(f64::to_bits), Some(theirs.to_bits()), "{}", body);
            prop_assert_eq!(s.position(), text.len(), "{}", body);
        }

        /// Eight bytes at a time, digits are found and read as one by one.
        #[test]
        fn runs_of_digits_read_as_byte_by_byte(bytes in proptest::collection::vec(
            prop_oneof![8 => b'0'..=b'9', 1 => Just(b'/'), 1 => Just(b':'), 1 => Just(b'.'), 2 => any::<u8>()], 0..30), from in 0usize..4) {
            let from = from.min(bytes.len());
            let naive_end = from + bytes[from..].iter().take_while(|b| b.is_ascii_digit()).count();
            let naive = bytes[from..naive_end].iter().fold(7u64, |m, &b| m.wrapping_mul(10).wrapping_add(u64::from(b - b'0')));
            let mut m = 7;
            prop_assert_eq!(digits(&bytes, from, &mut m), naive_end);
            prop_assert_eq!(m, naive);
        }

        /// Mantissas at the edge of the fast path (2^53) read to the bit.
        #[test]
        fn mantissas_near_two_to_the_53_read_as_serde_json_reads_them(m in (1u64 << 52)..(1u64 << 54),
                                                                       e in -24i32..24) {
            let text = format!("{m}e{e}");
            let theirs: f64 = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(number(&text).map(f64::to_bits), Some(theirs.to_bits()), "{}", text);
        }

        /// Whatever a client's JSON library writes for a number, the cursor
        /// reads as serde_json (with `float_roundtrip`) does, to the bit.
        #[test]
        fn numbers_read_as_serde_json_reads_them(v in any::<f64>().prop_filter("finite", |v| v.is_finite()),
                                                 i in any::<i64>()) {
            for text in [serde_json::to_string(&v).unwrap(), format!("{v:e}"), i.to_string()] {
                let theirs: f64 = serde_json::from_str(&text).unwrap();
                prop_assert_eq!(number(&text).map(f64::to_bits), Some(theirs.to_bits()), "{}", text);
            }
        }
    }
}
