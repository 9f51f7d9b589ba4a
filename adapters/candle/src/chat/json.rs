//! Constrained decoding for the JSON response formats.
//!
//! [`JsonState`] is an incremental JSON recogniser over bytes: it accepts exactly the byte
//! strings that are a prefix of a valid JSON document whose top-level value is an object. It is
//! `Copy`, so testing a candidate token is cheap. [`TokenTrie`] arranges a vocabulary's token
//! byte strings in a trie, built once per vocabulary, so that the allowed-token mask for a step
//! walks each shared prefix once and prunes a whole subtree at the first invalid byte.

/// Deepest nesting accepted (objects and arrays together).
pub(crate) const MAX_DEPTH: u32 = 60;
/// Longest run of whitespace accepted between tokens (keeps a small model from looping on
/// newlines).
const MAX_WS_RUN: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Num {
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    Exp,
    ExpSign,
    ExpDigit,
}

impl Num {
    fn terminal(self) -> bool {
        matches!(self, Num::Zero | Num::Int | Num::Frac | Num::ExpDigit)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Before the top-level object.
    Start,
    /// A value must follow (after `:` or `,` in an array); `first` after `[` (so `]` is fine).
    Value { first: bool },
    /// After `{`: a key or `}`.
    KeyOrEnd,
    /// After `,` in an object: a key.
    Key,
    /// Inside a string.
    Str {
        key: bool,
        /// 0 none, 1 after a backslash, 2..=5 hex digits still expected (+1).
        esc: u8,
        /// UTF-8 continuation bytes still expected.
        cont: u8,
    },
    /// After a key: `:`.
    Colon,
    /// After a value: `,` or the container's end.
    After,
    /// Inside a number.
    Number(Num),
    /// Inside `true` (0), `false` (1) or `null` (2), `pos` bytes matched.
    Lit { which: u8, pos: u8 },
    /// The top-level value is complete.
    Done,
}

const LITERALS: [&[u8]; 3] = [b"true", b"false", b"null"];

/// A byte-level recogniser the token trie can walk: `step` says whether a byte may follow.
pub(crate) trait ByteMachine: Copy {
    /// Feeds one byte; `false` (and the state unspecified) when it cannot follow.
    fn step(&mut self, b: u8) -> bool;
}

impl ByteMachine for JsonState {
    fn step(&mut self, b: u8) -> bool {
        JsonState::step(self, b)
    }
}

/// An incremental JSON recogniser (top-level value: an object).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JsonState {
    /// Bit i set: level i is an object; clear: an array.
    stack: u64,
    depth: u32,
    mode: Mode,
    ws: u8,
}

impl Default for JsonState {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonState {
    /// Before any byte.
    pub(crate) fn new() -> Self {
        JsonState {
            stack: 0,
            depth: 0,
            mode: Mode::Start,
            ws: 0,
        }
    }

    /// Where the recogniser is.
    pub(super) fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether the document is complete.
    pub(crate) fn is_done(&self) -> bool {
        self.mode == Mode::Done
    }

    fn in_object(&self) -> bool {
        self.depth > 0 && (self.stack >> (self.depth - 1)) & 1 == 1
    }

    fn push(&mut self, object: bool) -> bool {
        if self.depth >= MAX_DEPTH {
            return false;
        }
        if object {
            self.stack |= 1 << self.depth;
        } else {
            self.stack &= !(1 << self.depth);
        }
        self.depth += 1;
        self.mode = if object {
            Mode::KeyOrEnd
        } else {
            Mode::Value { first: true }
        };
        true
    }

    fn pop(&mut self) {
        self.depth -= 1;
        self.mode = if self.depth == 0 {
            Mode::Done
        } else {
            Mode::After
        };
    }

    fn value_done(&mut self) {
        self.mode = if self.depth == 0 {
            Mode::Done
        } else {
            Mode::After
        };
    }

    fn whitespace(&mut self, b: u8) -> Option<bool> {
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            if self.ws >= MAX_WS_RUN {
                return Some(false);
            }
            self.ws += 1;
            return Some(true);
        }
        None
    }

    fn start_value(&mut self, b: u8) -> bool {
        match b {
            b'{' => self.push(true),
            b'[' => self.push(false),
            b'"' => {
                self.mode = Mode::Str {
                    key: false,
                    esc: 0,
                    cont: 0,
                };
                true
            }
            b'-' => {
                self.mode = Mode::Number(Num::Minus);
                true
            }
            b'0' => {
                self.mode = Mode::Number(Num::Zero);
                true
            }
            b'1'..=b'9' => {
                self.mode = Mode::Number(Num::Int);
                true
            }
            b't' => {
                self.mode = Mode::Lit { which: 0, pos: 1 };
                true
            }
            b'f' => {
                self.mode = Mode::Lit { which: 1, pos: 1 };
                true
            }
            b'n' => {
                self.mode = Mode::Lit { which: 2, pos: 1 };
                true
            }
            _ => false,
        }
    }

    /// Feeds one byte; `false` (and the state unspecified) when the byte cannot follow.
    pub(crate) fn step(&mut self, b: u8) -> bool {
        match self.mode {
            Mode::Str { key, esc, cont } => {
                self.ws = 0;
                return self.string_byte(b, key, esc, cont);
            }
            Mode::Number(n) => {
                if let Some(next) = number_step(n, b) {
                    self.mode = Mode::Number(next);
                    self.ws = 0;
                    return true;
                }
                if !n.terminal() {
                    return false;
                }
                // The number ended; the byte belongs to what follows.
                self.value_done();
                if self.mode == Mode::Done {
                    return false;
                }
            }
            Mode::Lit { which, pos } => {
                let lit = LITERALS[which as usize];
                if lit.get(pos as usize) != Some(&b) {
                    return false;
                }
                self.ws = 0;
                if pos as usize + 1 == lit.len() {
                    self.value_done();
                } else {
                    self.mode = Mode::Lit {
                        which,
                        pos: pos + 1,
                    };
                }
                return true;
            }
            _ => {}
        }
        if let Some(ok) = self.whitespace(b) {
            // No whitespace before the top-level object nor after it.
            return ok && !matches!(self.mode, Mode::Start | Mode::Done);
        }
        self.ws = 0;
        match self.mode {
            Mode::Start => b == b'{' && self.push(true),
            Mode::Value { first } => {
                if first && b == b']' {
                    self.pop();
                    true
                } else {
                    self.start_value(b)
                }
            }
            Mode::KeyOrEnd | Mode::Key => {
                if b == b'"' {
                    self.mode = Mode::Str {
                        key: true,
                        esc: 0,
                        cont: 0,
                    };
                    true
                } else if b == b'}' && self.mode == Mode::KeyOrEnd {
                    self.pop();
                    true
                } else {
                    false
                }
            }
            Mode::Colon => {
                if b == b':' {
                    self.mode = Mode::Value { first: false };
                    true
                } else {
                    false
                }
            }
            Mode::After => {
                let obj = self.in_object();
                match b {
                    b',' => {
                        self.mode = if obj {
                            Mode::Key
                        } else {
                            Mode::Value { first: false }
                        };
                        true
                    }
                    b'}' if obj => {
                        self.pop();
                        true
                    }
                    b']' if !obj => {
                        self.pop();
                        true
                    }
                    _ => false,
                }
            }
            Mode::Done => false,
            Mode::Str { .. } | Mode::Number(_) | Mode::Lit { .. } => false,
        }
    }

    fn string_byte(&mut self, b: u8, key: bool, esc: u8, cont: u8) -> bool {
        if cont > 0 {
            if b & 0xC0 != 0x80 {
                return false;
            }
            self.mode = Mode::Str {
                key,
                esc,
                cont: cont - 1,
            };
            return true;
        }
        if esc == 1 {
            let next = match b {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 0,
                b'u' => 5,
                _ => return false,
            };
            self.mode = Mode::Str {
                key,
                esc: next,
                cont: 0,
            };
            return true;
        }
        if esc >= 2 {
            if !b.is_ascii_hexdigit() {
                return false;
            }
            self.mode = Mode::Str {
                key,
                esc: if esc == 2 { 0 } else { esc - 1 },
                cont: 0,
            };
            return true;
        }
        match b {
            b'"' => {
                if key {
                    self.mode = Mode::Colon;
                } else {
                    self.value_done();
                }
                true
            }
            b'\\' => {
                self.mode = Mode::Str {
                    key,
                    esc: 1,
                    cont: 0,
                };
                true
            }
            0x00..=0x1F | 0x7F => false,
            0x20..=0x7E => true,
            0xC2..=0xDF => {
                self.mode = Mode::Str { key, esc, cont: 1 };
                true
            }
            0xE0..=0xEF => {
                self.mode = Mode::Str { key, esc, cont: 2 };
                true
            }
            0xF0..=0xF4 => {
                self.mode = Mode::Str { key, esc, cont: 3 };
                true
            }
            _ => false,
        }
    }

    /// Feeds bytes; `false` when one of them cannot follow (the state is then unspecified).
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> bool {
        bytes.iter().all(|&b| self.step(b))
    }

    /// The shortest text that completes the document from this state (used when the token limit
    /// cuts generation short). A pending UTF-8 sequence must be removed by the caller first.
    pub(crate) fn closing(&self) -> String {
        let mut out = String::new();
        let mut s = *self;
        match s.mode {
            Mode::Start => {
                return "{}".into();
            }
            Mode::Done => return out,
            Mode::Str { key, esc, .. } => {
                match esc {
                    1 => out.push('n'),
                    e if e >= 2 => out.extend(std::iter::repeat_n('0', (e - 1) as usize)),
                    _ => {}
                }
                out.push('"');
                if key {
                    out.push_str(":null");
                }
            }
            Mode::Number(n) => {
                if !n.terminal() {
                    out.push('0');
                }
            }
            Mode::Lit { which, pos } => {
                let lit = LITERALS[which as usize];
                out.push_str(std::str::from_utf8(&lit[pos as usize..]).unwrap_or(""));
            }
            Mode::Value { first: true } => {}
            Mode::Value { first: false } => out.push_str("null"),
            Mode::KeyOrEnd | Mode::After => {}
            Mode::Key => out.push_str("\"\":null"),
            Mode::Colon => out.push_str(":null"),
        }
        while s.depth > 0 {
            out.push(if s.in_object() { '}' } else { ']' });
            s.depth -= 1;
        }
        out
    }
}

pub(super) fn number_step(n: Num, b: u8) -> Option<Num> {
    Some(match (n, b) {
        (Num::Minus, b'0') => Num::Zero,
        (Num::Minus, b'1'..=b'9') => Num::Int,
        (Num::Zero | Num::Int, b'.') => Num::Dot,
        (Num::Zero | Num::Int | Num::Frac, b'e' | b'E') => Num::Exp,
        (Num::Int, b'0'..=b'9') => Num::Int,
        (Num::Dot | Num::Frac, b'0'..=b'9') => Num::Frac,
        (Num::Exp, b'+' | b'-') => Num::ExpSign,
        (Num::Exp | Num::ExpSign | Num::ExpDigit, b'0'..=b'9') => Num::ExpDigit,
        _ => return None,
    })
}

/// Completes `text` (JSON generated under the constraint, cut short) into a valid document.
pub(crate) fn close_document(text: &str) -> String {
    let mut s = JsonState::new();
    let mut out = String::with_capacity(text.len() + 8);
    for ch in text.chars() {
        let mut buf = [0u8; 4];
        let bytes = ch.encode_utf8(&mut buf).as_bytes();
        let mut next = s;
        if !next.feed(bytes) {
            break;
        }
        s = next;
        out.push(ch);
    }
    out.push_str(&s.closing());
    out
}

/// The token byte strings of a vocabulary, as a trie.
#[derive(Debug)]
pub(crate) struct TokenTrie {
    /// Children of each node: (byte, child index), sorted by byte.
    children: Vec<Vec<(u8, u32)>>,
    /// Tokens ending at each node.
    tokens: Vec<Vec<u32>>,
}

impl TokenTrie {
    /// Builds the trie of every token with a non-empty byte string (special tokens have none).
    pub(crate) fn new(token_bytes: &[Vec<u8>]) -> Self {
        let mut children: Vec<Vec<(u8, u32)>> = vec![Vec::new()];
        let mut tokens: Vec<Vec<u32>> = vec![Vec::new()];
        for (id, bytes) in token_bytes.iter().enumerate() {
            if bytes.is_empty() {
                continue;
            }
            let mut node = 0usize;
            for &b in bytes {
                let found = children[node].iter().find(|(c, _)| *c == b).map(|x| x.1);
                node = match found {
                    Some(n) => n as usize,
                    None => {
                        let n = children.len();
                        children.push(Vec::new());
                        tokens.push(Vec::new());
                        children[node].push((b, n as u32));
                        n
                    }
                };
            }
            tokens[node].push(id as u32);
        }
        for c in &mut children {
            c.sort_unstable_by_key(|x| x.0);
        }
        TokenTrie { children, tokens }
    }

    /// Marks in `allowed` (one flag per token) every token that can follow `state`.
    pub(crate) fn allowed<S: ByteMachine>(&self, state: S, allowed: &mut [bool]) {
        allowed.iter_mut().for_each(|a| *a = false);
        let mut stack: Vec<(u32, S)> = Vec::with_capacity(256);
        for &(b, child) in &self.children[0] {
            let mut s = state;
            if s.step(b) {
                stack.push((child, s));
            }
        }
        while let Some((node, s)) = stack.pop() {
            for &t in &self.tokens[node as usize] {
                if let Some(a) = allowed.get_mut(t as usize) {
                    *a = true;
                }
            }
            for &(b, child) in &self.children[node as usize] {
                let mut next = s;
                if next.step(b) {
                    stack.push((child, next));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(text: &str) -> bool {
        let mut s = JsonState::new();
        s.feed(text.as_bytes())
    }

    fn complete(text: &str) -> bool {
        let mut s = JsonState::new();
        s.feed(text.as_bytes()) && s.is_done()
    }

    #[test]
    fn accepts_valid_documents_and_their_prefixes() {
        let docs = [
            r#"{}"#,
            r#"{"a":1}"#,
            r#"{"a": [1, 2.5, -3e+2, 0, true, false, null], "b": {"c": "d\n\u00e9\"x"}}"#,
            "{\"name\": \"caf\u{e9} \u{4e2d}\u{6587}\", \"n\": -0.5E3}",
            "{\n  \"a\": []\n}",
        ];
        for d in docs {
            assert!(complete(d), "{d}");
            assert!(serde_json::from_str::<serde_json::Value>(d).is_ok());
            for i in 0..d.len() {
                let mut s = JsonState::new();
                assert!(s.feed(&d.as_bytes()[..i]), "prefix {i} of {d}");
                assert!(!s.is_done());
            }
        }
    }

    #[test]
    fn rejects_invalid_bytes() {
        for bad in [
            " {",
            "[1]",
            "\"a\"",
            "{a",
            "{\"a\" 1",
            "{\"a\":01",
            "{\"a\":1,}",
            "{\"a\":tru ",
            "{\"a\":[1,]",
            "{\"a\":\"\\x\"",
            "{\"a\":\"\n\"",
            "{}x",
            "{} ",
            "{\"a\":1]",
            "{\"a\":-}",
            "{\"a\":1.}",
            "{\"a\":\"\\u12g\"",
        ] {
            assert!(!accepts(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{{\"a\":{}", "[".repeat(MAX_DEPTH as usize));
        assert!(!accepts(&deep));
    }

    #[test]
    fn whitespace_runs_are_bounded() {
        assert!(accepts(&format!("{{{}", " ".repeat(16))));
        assert!(!accepts(&format!("{{{}", " ".repeat(17))));
    }

    #[test]
    fn closing_completes_every_prefix() {
        let d = r#"{"a": [1, 2.5e-3, true, {"k": "v\u00e9\n"}], "b": null, "c": "x", "d": -1}"#;
        for i in 0..=d.len() {
            let prefix = &d[..i];
            let closed = close_document(prefix);
            let v: serde_json::Value = serde_json::from_str(&closed)
                .unwrap_or_else(|e| panic!("{prefix:?} -> {closed:?}: {e}"));
            assert!(v.is_object());
        }
        assert_eq!(close_document(""), "{}");
    }

    #[test]
    fn trie_mask_matches_a_direct_check() {
        let vocab: Vec<Vec<u8>> = [
            "{", "{\"", "\"", "a", "\":", " ", "}", "1", "12", ".5", "true", "tr", "}}", "", ", ",
            "\n", "é", "\\n", "\\",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        let trie = TokenTrie::new(&vocab);
        let mut mask = vec![false; vocab.len()];
        for prefix in [
            "",
            "{",
            "{\"a",
            "{\"a\":",
            "{\"a\":1",
            "{\"a\":t",
            "{\"a\":\"x",
        ] {
            let mut s = JsonState::new();
            assert!(s.feed(prefix.as_bytes()));
            trie.allowed(s, &mut mask);
            for (i, tok) in vocab.iter().enumerate() {
                let mut t = s;
                let direct = !tok.is_empty() && t.feed(tok);
                assert_eq!(mask[i], direct, "prefix {prefix:?} token {:?}", vocab[i]);
            }
        }
    }
}
