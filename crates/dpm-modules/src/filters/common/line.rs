//! One JSON object written field by field into a byte buffer: a log line per statement
//! without building a `serde_json::Value` map for it.

/// A JSON object being written (see the module docs).
pub struct JsonLine {
    out: Vec<u8>,
    empty: bool,
}

impl JsonLine {
    /// An empty object, with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> JsonLine {
        let mut out = Vec::with_capacity(capacity);
        out.push(b'{');
        JsonLine { out, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        // Keys are the filters' own identifiers: plain ASCII, nothing to escape.
        debug_assert!(key.bytes().all(plain));
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// A string (bytes that are not UTF-8 are replaced).
    fn string(&mut self, s: &[u8]) {
        // Why the fast path: a log line per statement escapes its SQL, and SQL is mostly
        // printable ASCII without quotes or backslashes — copied as is, no UTF-8
        // validation pass and no escaper walking it a second time.
        if s.iter()
            .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        {
            self.out.push(b'"');
            self.out.extend_from_slice(s);
            self.out.push(b'"');
            return;
        }
        let text = String::from_utf8_lossy(s);
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.out, text.as_ref());
    }

    /// `"key": "value"`.
    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.bytes(key, value.as_bytes())
    }

    /// `"key": "value"` from bytes.
    pub fn bytes(&mut self, key: &str, value: &[u8]) -> &mut Self {
        self.key(key);
        self.string(value);
        self
    }

    /// `"key": "value"` or `"key": null`.
    pub fn opt_bytes(&mut self, key: &str, value: Option<&[u8]>) -> &mut Self {
        match value {
            Some(v) => self.bytes(key, v),
            None => self.null(key),
        }
    }

    /// `"key": n`.
    pub fn num(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self
    }

    /// `"key": "<the time now, RFC 3339>"` (see [`write_now_rfc3339`]).
    pub fn now(&mut self, key: &str) -> &mut Self {
        self.key(key);
        self.out.push(b'"');
        write_now_rfc3339(&mut self.out);
        self.out.push(b'"');
        self
    }

    /// `"key": null`.
    pub fn null(&mut self, key: &str) -> &mut Self {
        self.key(key);
        self.out.extend_from_slice(b"null");
        self
    }

    /// `"key": <json>` (already encoded).
    pub fn raw(&mut self, key: &str, json: &[u8]) -> &mut Self {
        self.key(key);
        self.out.extend_from_slice(json);
        self
    }

    /// The line, closed.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.push(b'}');
        self.out
    }
}

/// Printable ASCII that JSON strings carry as is (no quote, no backslash).
#[inline]
fn plain(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'
}

/// The time now, UTC, RFC 3339 with microseconds (`2026-11-30T17:01:02.123456Z`).
pub fn now_rfc3339() -> String {
    let mut out = Vec::with_capacity(27);
    write_now_rfc3339(&mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends the time now, as [`now_rfc3339`] gives it, to `out`.
pub fn write_now_rfc3339(out: &mut Vec<u8>) {
    use std::fmt::Write as _;
    thread_local! {
        /// The formatted date and time of the last whole second seen (per thread).
        static SECOND: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    // Why cached: a log line per statement would otherwise run chrono's formatter for
    // the same second thousands of times; only the microseconds change.
    let now = chrono::Utc::now();
    let (secs, micros) = (now.timestamp(), now.timestamp_subsec_micros().min(999_999));
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            cached.1.clear();
            let _ = write!(cached.1, "{}", now.format("%Y-%m-%dT%H:%M:%S"));
            cached.0 = secs;
        }
        out.extend_from_slice(cached.1.as_bytes());
    });
    let _ = std::io::Write::write_fmt(out, format_args!(".{micros:06}Z"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_valid_json() {
        let mut l = JsonLine::with_capacity(64);
        l.str("sql", "select \"x\"\n")
            .num("n", 3)
            .null("e")
            .opt_bytes("u", Some(b"\xffa"))
            .raw("t", b"[1]");
        let v: serde_json::Value = serde_json::from_slice(&l.finish()).unwrap();
        assert_eq!(v["sql"], "select \"x\"\n");
        assert_eq!(v["n"], 3);
        assert!(v["e"].is_null());
        assert_eq!(v["u"], "\u{fffd}a");
        assert_eq!(v["t"][0], 1);
        let now = now_rfc3339();
        let parsed = chrono::DateTime::parse_from_rfc3339(&now).unwrap();
        assert!(
            (chrono::Utc::now() - parsed.with_timezone(&chrono::Utc))
                .num_seconds()
                .abs()
                < 2
        );
        assert_eq!(now.len(), 27, "{now}");
    }
}
