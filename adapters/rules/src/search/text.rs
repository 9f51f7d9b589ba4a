//! Text analysis shared by indexing and querying: words, CJK n-grams, lowercase and folding.

pub(crate) use merchant_ai::text::is_cjk;

use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, TextAnalyzer, Token, TokenStream, Tokenizer,
};

/// The name the analyzer is registered under in the index.
pub(crate) const ANALYZER: &str = "merchant_ai";

/// A run of the input: a word of letters/digits, or a run of CJK characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunKind {
    Word,
    Cjk,
}

/// Splits `text` into runs with byte offsets `(kind, from, to)`.
pub(crate) fn runs(text: &str) -> Vec<(RunKind, usize, usize)> {
    let mut out = Vec::new();
    let mut cur: Option<(RunKind, usize)> = None;
    for (i, c) in text.char_indices() {
        let kind = if is_cjk(c) {
            Some(RunKind::Cjk)
        } else if c.is_alphanumeric() {
            Some(RunKind::Word)
        } else {
            None
        };
        match (cur, kind) {
            (Some((k, _)), Some(k2)) if k == k2 => {}
            (Some((k, s)), _) => {
                out.push((k, s, i));
                cur = kind.map(|k2| (k2, i));
            }
            (None, Some(k2)) => cur = Some((k2, i)),
            (None, None) => {}
        }
    }
    if let Some((k, s)) = cur {
        out.push((k, s, text.len()));
    }
    out
}

/// Emits words as they are and CJK runs as unigrams plus bigrams (index side), or as bigrams
/// only, a lone character as itself (query side).
#[derive(Debug, Clone, Copy)]
pub(crate) struct MerchantTokenizer {
    /// Query mode: CJK runs give bigrams only.
    pub query: bool,
}

/// Tokens produced eagerly.
pub(crate) struct VecTokenStream {
    tokens: Vec<Token>,
    next: usize,
    /// Returned by `token()` before the first `advance()` or when there is no token.
    empty: Token,
}

impl TokenStream for VecTokenStream {
    fn advance(&mut self) -> bool {
        if self.next < self.tokens.len() {
            self.next += 1;
            true
        } else {
            false
        }
    }
    fn token(&self) -> &Token {
        match self.next.checked_sub(1) {
            Some(i) => &self.tokens[i],
            None => &self.empty,
        }
    }
    fn token_mut(&mut self) -> &mut Token {
        match self.next.checked_sub(1) {
            Some(i) => &mut self.tokens[i],
            None => &mut self.empty,
        }
    }
}

impl Tokenizer for MerchantTokenizer {
    type TokenStream<'a> = VecTokenStream;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        let mut tokens = Vec::new();
        let mut position = 0usize;
        let mut push = |from: usize, to: usize, tokens: &mut Vec<Token>| {
            tokens.push(Token {
                offset_from: from,
                offset_to: to,
                position,
                text: text[from..to].to_string(),
                position_length: 1,
            });
            position += 1;
        };
        for (kind, from, to) in runs(text) {
            match kind {
                RunKind::Word => push(from, to, &mut tokens),
                RunKind::Cjk => {
                    let chars: Vec<(usize, char)> = text[from..to].char_indices().collect();
                    let end_of = |j: usize| chars.get(j + 1).map(|(o, _)| from + o).unwrap_or(to);
                    if self.query {
                        if chars.len() == 1 {
                            push(from, to, &mut tokens);
                        } else {
                            for (j, (o, _)) in chars.iter().enumerate().take(chars.len() - 1) {
                                push(from + o, end_of(j + 1), &mut tokens);
                            }
                        }
                    } else {
                        for j in 0..chars.len() {
                            push(from + chars[j].0, end_of(j), &mut tokens);
                            if j + 1 < chars.len() {
                                push(from + chars[j].0, end_of(j + 1), &mut tokens);
                            }
                        }
                    }
                }
            }
        }
        VecTokenStream {
            tokens,
            next: 0,
            empty: Token::default(),
        }
    }
}

/// The analyzer for indexing (`query = false`) or querying (`query = true`).
pub(crate) fn analyzer(query: bool) -> TextAnalyzer {
    TextAnalyzer::builder(MerchantTokenizer { query })
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// One query token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryToken {
    /// The normalised text.
    pub text: String,
    /// A CJK n-gram (never fuzzed nor prefixed).
    pub cjk: bool,
}

/// Normalised query tokens, in order.
pub(crate) fn query_tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<QueryToken> {
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while let Some(t) = stream.next() {
        let cjk = t.text.chars().next().is_some_and(is_cjk);
        out.push(QueryToken {
            text: t.text.clone(),
            cjk,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_tokens(s: &str) -> Vec<String> {
        let mut a = analyzer(false);
        let mut st = a.token_stream(s);
        let mut v = Vec::new();
        while let Some(t) = st.next() {
            v.push(t.text.clone());
        }
        v
    }

    #[test]
    fn words_are_lowercased_and_folded() {
        assert_eq!(
            index_tokens("Crème BRÛLÉE t-shirt"),
            ["creme", "brulee", "t", "shirt"]
        );
    }

    #[test]
    fn cjk_runs_give_unigrams_and_bigrams() {
        assert_eq!(
            index_tokens("越野跑鞋 Pro"),
            ["越", "越野", "野", "野跑", "跑", "跑鞋", "鞋", "pro"]
        );
        let mut q = analyzer(true);
        let toks: Vec<String> = query_tokens(&mut q, "跑鞋 T恤")
            .into_iter()
            .map(|t| t.text)
            .collect();
        assert_eq!(toks, ["跑鞋", "t", "恤"]);
    }

    #[test]
    fn empty_and_punctuation_give_nothing() {
        assert!(index_tokens("").is_empty());
        assert!(index_tokens(" -- !! ").is_empty());
    }
}
