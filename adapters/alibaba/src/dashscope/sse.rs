//! DashScope's server-sent events, decoded incrementally whatever the chunking.
//!
//! DashScope streams frames such as
//!
//! ```text
//! id:1
//! event:result
//! :HTTP_STATUS/200
//! data:{"output":{...},"usage":{...},"request_id":"r-1"}
//!
//! ```
//!
//! Lines end in `\n`, `\r\n` or `\r` (a `\r\n` split across chunks counts once); a line is
//! decoded as UTF-8 only once complete, so a character split across chunks is fine. `data:`
//! may carry a space after the colon or not; several data lines are joined with `\n`. Comment
//! lines (starting with `:`) are ignored, except `:HTTP_STATUS/<n>`, which gives the frame's
//! status; a `status:<n>` field (older SDKs) does the same. A blank line ends a frame. There is
//! no `[DONE]`: the stream ends when the connection closes. A frame larger than the bound
//! fails with a [`Decode`](merchant_ai::ErrorKind::Decode) error rather than growing.

use merchant_ai::{Error, Result};

/// The default bound on one frame: 1 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1 << 20;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    /// The `id:` field.
    pub id: Option<String>,
    /// The `event:` field (`result`, `error`).
    pub event: Option<String>,
    /// The status from `:HTTP_STATUS/<n>` or `status:<n>`.
    pub status: Option<u16>,
    /// The data lines joined by `\n`.
    pub data: String,
}

/// An incremental decoder of DashScope frames.
#[derive(Debug)]
pub struct FrameDecoder {
    max: usize,
    line: Vec<u8>,
    after_cr: bool,
    cur: Frame,
    has_data: bool,
    started: bool,
    failed: bool,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES)
    }
}

impl FrameDecoder {
    /// A decoder bounding each frame to `max_frame_bytes` (at least 1).
    pub fn new(max_frame_bytes: usize) -> Self {
        FrameDecoder {
            max: max_frame_bytes.max(1),
            line: Vec::new(),
            after_cr: false,
            cur: Frame::default(),
            has_data: false,
            started: false,
            failed: false,
        }
    }

    /// Feeds bytes and appends the frames they complete to `out`, in order. On an error, `out`
    /// holds the frames completed before it, however the bytes were chunked, and the decoder
    /// stays failed.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Frame>) -> Result<()> {
        if self.failed {
            return Err(Error::decode("the event stream already failed to decode"));
        }
        let r = self.push_inner(bytes, out);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn push_inner(&mut self, bytes: &[u8], out: &mut Vec<Frame>) -> Result<()> {
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if b != b'\n' && b != b'\r' {
                self.after_cr = false;
                continue;
            }
            // The `\n` of a `\r\n` whose `\r` ended the previous line.
            if b == b'\n' && self.after_cr && start == i {
                self.after_cr = false;
                start = i + 1;
                continue;
            }
            self.after_cr = b == b'\r';
            self.grow(&bytes[start..i])?;
            start = i + 1;
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, out)?;
        }
        self.grow(&bytes[start..])
    }

    fn grow(&mut self, part: &[u8]) -> Result<()> {
        if self.line.len() + part.len() + self.cur.data.len() > self.max {
            return Err(Error::decode(format!(
                "a streamed event exceeds {} bytes without ending",
                self.max
            )));
        }
        self.line.extend_from_slice(part);
        Ok(())
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<Frame>) -> Result<()> {
        if line.is_empty() {
            if self.has_data || self.cur.event.is_some() {
                out.push(std::mem::take(&mut self.cur));
            } else {
                self.cur = Frame::default();
            }
            self.has_data = false;
            self.started = false;
            return Ok(());
        }
        self.started = true;
        let line = std::str::from_utf8(line)
            .map_err(|_| Error::decode("a streamed event line is not valid UTF-8"))?;
        if let Some(comment) = line.strip_prefix(':') {
            if let Some(s) = comment.trim().strip_prefix("HTTP_STATUS/") {
                self.cur.status = s.trim().parse().ok();
            }
            return Ok(());
        }
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match name {
            "data" => {
                if self.has_data {
                    self.cur.data.push('\n');
                }
                self.cur.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.cur.event = Some(value.to_owned()),
            "id" => self.cur.id = Some(value.to_owned()),
            "status" => self.cur.status = value.trim().parse().ok(),
            // `retry:` and unknown fields are ignored, as the SSE specification says.
            _ => {}
        }
        Ok(())
    }

    /// Whether bytes of an unfinished frame are buffered (a stream closing now was cut).
    pub fn has_partial(&self) -> bool {
        !self.line.is_empty() || self.has_data || self.cur.event.is_some()
    }

    /// Whether a frame was begun but not ended by a blank line (comment or field lines only).
    pub fn in_frame(&self) -> bool {
        self.started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: &[u8]) -> Vec<Frame> {
        let mut d = FrameDecoder::default();
        let mut out = Vec::new();
        d.push(bytes, &mut out).unwrap();
        out
    }

    #[test]
    fn fields_comments_and_status() {
        let f = all(b"id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"a\":1}\n\nid: 2\r\nevent: error\r\nstatus: 400\r\ndata: x\r\ndata: y\r\n\r\n");
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].id.as_deref(), Some("1"));
        assert_eq!(f[0].event.as_deref(), Some("result"));
        assert_eq!(f[0].status, Some(200));
        assert_eq!(f[0].data, "{\"a\":1}");
        assert_eq!(f[1].event.as_deref(), Some("error"));
        assert_eq!(f[1].status, Some(400));
        assert_eq!(f[1].data, "x\ny");
    }

    #[test]
    fn byte_by_byte_equals_whole() {
        let s = "id:1\r\nevent:result\r\n:HTTP_STATUS/200\r\ndata:{\"t\":\"日本\"}\r\n\r\nid:2\revent:result\rdata:z\r\r";
        let whole = all(s.as_bytes());
        let mut d = FrameDecoder::default();
        let mut out = Vec::new();
        for b in s.as_bytes() {
            d.push(std::slice::from_ref(b), &mut out).unwrap();
        }
        assert_eq!(whole, out);
        assert_eq!(out.len(), 2);
        assert!(!d.has_partial());
    }

    #[test]
    fn oversized_frames_fail() {
        let mut d = FrameDecoder::new(16);
        let mut out = Vec::new();
        assert!(d.push(b"data:0123456789abcdefghij", &mut out).is_err());
        assert!(d.push(b"\n\n", &mut out).is_err());
        let mut d = FrameDecoder::new(16);
        assert!(
            d.push(b"data:0123456789\ndata:0123456789\n", &mut out)
                .is_err()
        );
    }

    #[test]
    fn partial_frames_are_visible() {
        let mut d = FrameDecoder::default();
        let mut out = Vec::new();
        d.push(b"data:{\"a\"", &mut out).unwrap();
        assert!(d.has_partial());
        d.push(b":1}\n", &mut out).unwrap();
        assert!(d.has_partial());
        d.push(b"\n", &mut out).unwrap();
        assert!(!d.has_partial());
        assert_eq!(out.len(), 1);
    }
}
