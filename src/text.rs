//! Small text helpers every adapter that handles Chinese, Japanese or Korean text shares.

/// Whether `c` is a CJK ideograph, kana or hangul syllable: a character that is a word on its
/// own for search and similarity (no spaces between words in these scripts).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0x20000..=0x2FA1F) // CJK extensions B and later
}

/// Whether `c` is CJK punctuation or a full-width form (`，`, `。`, `（`, `Ａ`).
pub fn is_cjk_punctuation(c: char) -> bool {
    matches!(c as u32, 0x3000..=0x303F | 0xFF00..=0xFFEF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts() {
        for c in ['跑', 'ア', 'ひ', '한', '𠀀'] {
            assert!(is_cjk(c), "{c}");
        }
        for c in ['a', '1', 'é', '，', '。'] {
            assert!(!is_cjk(c), "{c}");
        }
        assert!(is_cjk_punctuation('，') && is_cjk_punctuation('（') && !is_cjk_punctuation(','));
    }
}
