//! What search matches, defined once, in Rust, for both databases: a photo's searchable text (title,
//! caption, keywords, people, original file name) and a query are folded into words the same way here, and
//! each database only answers "is every query word a prefix of one of the photo's words" over words it was
//! handed ready-made. SQLite stores them in an FTS5 table with the `ascii` tokenizer (which splits on ASCII
//! spaces and keeps every other byte), PostgreSQL turns them into a `tsvector` with `array_to_tsvector`
//! (lexemes taken as they are, no parser, no dictionary) and queries with a `tsquery` literal of `:*`
//! prefixes. Neither engine's own notion of a word, of case or of accents is ever used, so the same photos
//! give the same results on both.
//!
//! The folding: lower case, then compatibility decomposition (NFKD, so `ﬁ` is `fi` and `²` is `2`), then
//! without combining marks (so `é` is `e`), a few letters that have no decomposition spelled out (`ß` →
//! `ss`, `ø` → `o`, `æ` → `ae`, `œ` → `oe`, `ł` → `l`, `đ` → `d`, `þ` → `th`), then words are the runs of
//! alphanumeric characters: everything else (spaces, `_`, `.`, `-`, emoji) separates. `IMG_1234.HEIC` is
//! the words `img`, `1234`, `heic`, so `img_12` finds it and so does `heic`.

use unicode_normalization::UnicodeNormalization as _;
use unicode_normalization::char::is_combining_mark;

/// Characters of a stored word at most (longer ones are cut): far below PostgreSQL's 2 KiB lexeme limit.
/// A query word is cut the same way, so a long word still finds itself.
pub const MAX_WORD_CHARS: usize = 64;
/// Characters of a query at most; a longer one is refused rather than cut.
pub const MAX_QUERY_CHARS: usize = 200;
/// A query, folded: every word must be a prefix of a word of the photo. A query without words (only spaces
/// or punctuation) matches nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTerms {
    words: Vec<String>,
}

/// Why a query cannot be searched for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Empty.
    #[error("the query is empty")]
    Empty,
    /// Longer than [`MAX_QUERY_CHARS`] characters.
    #[error("the query is longer than {MAX_QUERY_CHARS} characters")]
    TooLong,
}

impl SearchTerms {
    /// Folds a query typed by a person.
    pub fn parse(query: &str) -> Result<Self, QueryError> {
        if query.is_empty() {
            return Err(QueryError::Empty);
        }
        if query.chars().count() > MAX_QUERY_CHARS {
            return Err(QueryError::TooLong);
        }
        let mut words = words(query);
        words.sort();
        words.dedup();
        // A word that is a prefix of another query word adds nothing: both must match anyway.
        let all = words.clone();
        words.retain(|w| !all.iter().any(|o| o != w && o.starts_with(w.as_str())));
        Ok(Self { words })
    }

    /// The folded words; none for a query of spaces or punctuation, which matches nothing.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The FTS5 query: each word a quoted prefix, implicitly ANDed. Words hold no `"` (alphanumerics only).
    pub fn fts5(&self) -> String {
        self.words
            .iter()
            .map(|w| format!("\"{w}\"*"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The `tsquery` literal: each word a quoted prefix lexeme, ANDed. Words hold no `'` or `\`.
    pub fn tsquery(&self) -> String {
        self.words
            .iter()
            .map(|w| format!("'{w}':*"))
            .collect::<Vec<_>>()
            .join(" & ")
    }

    /// Whether a photo with these searchable fields matches: the definition both databases implement, for
    /// tests and for reference.
    pub fn matches(&self, document: &str) -> bool {
        let words: Vec<&str> = document.split(' ').collect();
        !self.words.is_empty()
            && self
                .words
                .iter()
                .all(|q| words.iter().any(|w| w.starts_with(q.as_str())))
    }
}

/// The searchable text of a photo as stored: its folded words, each once, sorted, separated by one space
/// (empty when it has none).
pub fn document(
    title: Option<&str>,
    caption: Option<&str>,
    keywords: &[String],
    people: &[String],
    original_filename: &str,
) -> String {
    let mut all = Vec::new();
    for text in [title.unwrap_or(""), caption.unwrap_or(""), original_filename]
        .into_iter()
        .chain(keywords.iter().map(String::as_str))
        .chain(people.iter().map(String::as_str))
    {
        all.extend(words(text));
    }
    all.sort();
    all.dedup();
    all.join(" ")
}

/// The searchable text of a photo the Mac sent.
pub(crate) fn of_item(item: &super::PhotoUpsert) -> String {
    document(
        item.title.as_deref(),
        item.caption.as_deref(),
        &item.keywords,
        &item.people,
        &item.original_filename,
    )
}

/// The folded words of `text`, in order.
pub fn words(text: &str) -> Vec<String> {
    let mut folded = String::with_capacity(text.len());
    for c in text.to_lowercase().nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        match c {
            'ß' => folded.push_str("ss"),
            'ø' => folded.push('o'),
            'æ' => folded.push_str("ae"),
            'œ' => folded.push_str("oe"),
            'ł' => folded.push('l'),
            'đ' | 'ð' => folded.push('d'),
            'þ' => folded.push_str("th"),
            'ı' => folded.push('i'),
            c if c.is_alphanumeric() => folded.extend(c.to_lowercase()),
            _ => folded.push(' '),
        }
    }
    folded
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(MAX_WORD_CHARS).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: &[&str]) {
        assert_eq!(words(text), expected, "{text:?}");
    }

    #[test]
    fn folding() {
        check("IMG_1234.HEIC", &["img", "1234", "heic"]);
        check("Crème Brûlée", &["creme", "brulee"]);
        check("Straße", &["strasse"]);
        check("ÅNGSTRÖM ø", &["angstrom", "o"]);
        check("ﬁsh²", &["fish2"]);
        check("İstanbul", &["istanbul"]);
        check("  --  ", &[]);
        check("東京 タワー", &["東京", "タワー"]);
        check("a🎉b", &["a", "b"]);
        // NFC and NFD spellings fold alike.
        assert_eq!(words("e\u{301}t\u{e9}"), words("\u{e9}te\u{301}"));
    }

    #[test]
    fn queries() {
        assert_eq!(SearchTerms::parse(""), Err(QueryError::Empty));
        assert_eq!(SearchTerms::parse(&"é".repeat(201)), Err(QueryError::TooLong));
        assert!(SearchTerms::parse(&"é".repeat(200)).is_ok());
        let nothing = SearchTerms::parse(" .,; ").unwrap();
        assert!(nothing.words().is_empty());
        assert!(!nothing.matches("a b c"));
        let q = SearchTerms::parse("Beach beach BE sun").unwrap();
        assert_eq!(q.words(), ["beach", "sun"]);
        assert_eq!(q.fts5(), "\"beach\"* \"sun\"*");
        assert_eq!(q.tsquery(), "'beach':* & 'sun':*");
    }

    #[test]
    fn documents_and_matching() {
        let doc = document(
            Some("Sunset"),
            Some("At the beach"),
            &["Holiday".into()],
            &["Zoë Müller".into()],
            "IMG_0042.HEIC",
        );
        assert_eq!(doc, "0042 at beach heic holiday img muller sunset the zoe");
        for (query, found) in [
            ("sun", true),
            ("SUNSET beach", true),
            ("zoe muller", true),
            ("Zoë", true),
            ("img_004", true),
            ("holiday sunrise", false),
            ("unset", false),
        ] {
            assert_eq!(SearchTerms::parse(query).unwrap().matches(&doc), found, "{query}");
        }
    }
}
