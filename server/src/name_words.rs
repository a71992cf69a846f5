//! The words of a beneficiary's name as search compares them: lower case, accents removed
//! (`Énggar` and `enggar` are one word), split at anything that is not a letter or digit.
//! The projection stores them per NIK (`name_words`), and a query is folded the same way, so
//! `sit ami` finds `Siti Aminah`.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Most words kept of one name, and most characters of one word: a name is short.
pub const MAX_WORDS: usize = 8;
pub const MAX_WORD_CHARS: usize = 32;

/// `Siti Nur'aini` → `["siti", "nur", "aini"]`, each word once, in order.
pub fn words(name: &str) -> Vec<String> {
    let folded: String = name
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect();
    let mut words: Vec<String> = Vec::new();
    for word in folded.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() || words.iter().any(|w| w == word) {
            continue;
        }
        words.push(word.chars().take(MAX_WORD_CHARS).collect());
        if words.len() == MAX_WORDS {
            break;
        }
    }
    words
}

/// The end of the range of words that start with `prefix`: every such word is `>= prefix` and
/// `< prefix_end(prefix)` in byte order (as SQLite compares text, and PostgreSQL with the C
/// collation the `name_words` column has).
pub fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_to_their_words() {
        assert_eq!(words("Siti Nur'aini"), ["siti", "nur", "aini"]);
        assert_eq!(
            words("  ÉNGGAR  Pérez-Ñúñez "),
            ["enggar", "perez", "nunez"]
        );
        assert_eq!(words("Ani ani ANI"), ["ani"]);
        assert_eq!(words("Bin 2"), ["bin", "2"]);
        assert!(words("—").is_empty());
        assert_eq!(words(&"a ".repeat(20)).len(), 1);
        let long: String = "x".repeat(100);
        assert_eq!(words(&long)[0].len(), MAX_WORD_CHARS);
    }

    #[test]
    fn a_prefix_range_holds_its_words_and_nothing_else() {
        let end = prefix_end("ami");
        for inside in ["ami", "aminah", "amiruddin", "amiż"] {
            assert!(inside >= "ami" && inside < end.as_str(), "{inside}");
        }
        for outside in ["amh", "amj", "am", "b"] {
            assert!(!(outside >= "ami" && outside < end.as_str()), "{outside}");
        }
    }
}
