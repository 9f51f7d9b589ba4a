//! A server-sent events decoder that survives any split of the byte stream.
//!
//! Bytes go in as they arrive ([`SseDecoder::push`]); complete events come out. Lines end in
//! `\n`, `\r\n` or `\r`, and a line ending split across two chunks (`\r` | `\n`) counts once.
//! Lines are decoded as UTF-8 only when complete, so a character split across chunks is fine.
//! `data:` with or without a space, comment lines (`: keep-alive`), `event:`, `id:` and
//! `retry:` fields are handled as the SSE specification says. One event (its data lines plus the
//! line being read) may not exceed the configured bound: past it the decoder fails with a
//! [`Decode`](merchant_ai::ErrorKind::Decode) error instead of growing.

use merchant_ai::{Error, Result};

/// The default bound on one event's size: 1 MiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;

/// One decoded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, when present (`error` for vendor error events).
    pub event: Option<String>,
    /// The data lines joined by `\n`.
    pub data: String,
}

/// An incremental SSE decoder.
#[derive(Debug)]
pub struct SseDecoder {
    max_event_bytes: usize,
    line: Vec<u8>,
    after_cr: bool,
    data: String,
    has_data: bool,
    event: Option<String>,
    failed: bool,
}

impl Default for SseDecoder {
    fn default() -> Self {
        SseDecoder::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseDecoder {
    /// A decoder bounding each event to `max_event_bytes` (at least 1).
    pub fn new(max_event_bytes: usize) -> Self {
        SseDecoder {
            max_event_bytes: max_event_bytes.max(1),
            line: Vec::new(),
            after_cr: false,
            data: String::new(),
            has_data: false,
            event: None,
            failed: false,
        }
    }

    /// Feeds bytes; appends the events they complete to `out`, in order. On an error, `out`
    /// holds the events completed before it, however the bytes were chunked; the decoder then
    /// stays failed.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<()> {
        if self.failed {
            return Err(Error::decode("the event stream already failed to decode"));
        }
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' || b == b'\r' {
                let skip = b == b'\n' && self.after_cr && start == i && self.line.is_empty();
                self.after_cr = b == b'\r';
                if skip {
                    start = i + 1;
                    continue;
                }
                self.append(&bytes[start..i])?;
                start = i + 1;
                let line = std::mem::take(&mut self.line);
                if let Some(ev) = self.line_done(&line)? {
                    out.push(ev);
                }
            } else if self.after_cr {
                self.after_cr = false;
            }
        }
        self.append(&bytes[start..])
    }

    /// Whether a partial event is pending: bytes of an unfinished line or data lines not yet
    /// closed by a blank line. At the end of the stream this means it was cut mid-event.
    pub fn has_partial(&self) -> bool {
        !self.line.is_empty() || self.has_data || self.event.is_some()
    }

    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.line.len() + bytes.len() + self.data.len() > self.max_event_bytes {
            return Err(self.too_big());
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn too_big(&mut self) -> Error {
        self.failed = true;
        Error::decode(format!(
            "an event of the stream exceeds {} bytes (no blank line ends it)",
            self.max_event_bytes
        ))
    }

    fn line_done(&mut self, line: &[u8]) -> Result<Option<SseEvent>> {
        if line.is_empty() {
            if !self.has_data {
                self.event = None;
                return Ok(None);
            }
            let ev = SseEvent {
                event: self.event.take(),
                data: std::mem::take(&mut self.data),
            };
            self.has_data = false;
            return Ok(Some(ev));
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let line = match std::str::from_utf8(line) {
            Ok(s) => s,
            Err(e) => {
                self.failed = true;
                return Err(Error::decode(format!(
                    "the event stream is not valid UTF-8 at byte {} of a line",
                    e.valid_up_to()
                )));
            }
        };
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
                if self.data.len() > self.max_event_bytes {
                    return Err(self.too_big());
                }
            }
            "event" => self.event = Some(value.to_owned()),
            _ => {} // id, retry and unknown fields do not matter here
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut d = SseDecoder::default();
        let mut out = Vec::new();
        for c in chunks {
            d.push(c, &mut out).unwrap();
        }
        assert!(!d.has_partial());
        out
    }

    #[test]
    fn crlf_split_counts_once_and_no_space_after_colon() {
        let evs = all(&[
            b"data:{\"a\":1}\r",
            b"\n\r",
            b"\n: comment\r\nevent: error\ndata: x\n\n",
        ]);
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].data, "{\"a\":1}");
        assert_eq!(evs[1].event.as_deref(), Some("error"));
    }

    #[test]
    fn utf8_split_inside_a_character() {
        let s = "data: t\u{e9}\u{1F375}\n\n".as_bytes();
        for cut in 0..s.len() {
            let evs = all(&[&s[..cut], &s[cut..]]);
            assert_eq!(evs[0].data, "t\u{e9}\u{1F375}");
        }
    }

    #[test]
    fn bounded_event_size() {
        let mut d = SseDecoder::new(16);
        let mut out = Vec::new();
        assert!(d.push(b"data: 0123456789", &mut out).is_ok());
        let e = d.push(b"abcdefgh", &mut out).unwrap_err();
        assert_eq!(e.kind(), merchant_ai::ErrorKind::Decode);
        assert!(d.push(b"\n\n", &mut out).is_err());
        let mut d = SseDecoder::new(16);
        let e = d.push(b"data: a\n\ndata: 0123456789abcdef\n\n", &mut out);
        assert!(e.is_err());
        assert_eq!(out.len(), 1, "the event before the oversized one is kept");
    }

    #[test]
    fn partial_event_is_visible() {
        let mut d = SseDecoder::default();
        let mut out = Vec::new();
        d.push(b"data: {\"cho", &mut out).unwrap();
        assert!(d.has_partial());
        let mut d = SseDecoder::default();
        d.push(b"data: x\n", &mut out).unwrap();
        assert!(d.has_partial());
    }

    #[test]
    fn invalid_utf8_is_a_decode_error() {
        let mut d = SseDecoder::default();
        assert!(d.push(b"data: \xff\xfe\n", &mut Vec::new()).is_err());
    }
}
