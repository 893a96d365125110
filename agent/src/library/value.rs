//! Lenient reads of one column of a result row, in place.
//!
//! Core Data declares types loosely (dates are `TIMESTAMP`, some integers arrive as reals) and SQLite stores what
//! it is given, so a column is read as whatever its value can be taken for, the way SQLite's own
//! `sqlite3_column_int64`/`_double`/`_text` coerce, and NULL is `None`. Text is borrowed from the row, so a
//! 100,000-row scan allocates only for what ends up in a sync item.
//!
//! Text a person typed or named (titles, captions, keywords, people, album titles, file names) leaves the reader
//! in Unicode NFC through [`nfc`]: Photos 5 (macOS 10.15) stored some of it decomposed (the keyword `Val d'Isère`
//! as `e` + U+0300, a file name from HFS+), and one word in two forms compares, sorts and searches as two words.

use std::borrow::Cow;

use rusqlite::Row;
use rusqlite::types::ValueRef;
use unicode_normalization::{IsNormalized, UnicodeNormalization as _, is_nfc_quick};

/// An integer: integers as they are, reals truncated, numeric text parsed.
pub(crate) fn int(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<i64>> {
    Ok(match row.get_ref(index)? {
        ValueRef::Integer(value) => Some(value),
        ValueRef::Real(value) => Some(value as i64),
        ValueRef::Text(text) => std::str::from_utf8(text).ok().and_then(|t| t.trim().parse().ok()),
        ValueRef::Null | ValueRef::Blob(_) => None,
    })
}

/// A real: reals as they are, integers widened, numeric text parsed.
pub(crate) fn real(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<f64>> {
    Ok(match row.get_ref(index)? {
        ValueRef::Real(value) => Some(value),
        ValueRef::Integer(value) => Some(value as f64),
        ValueRef::Text(text) => std::str::from_utf8(text).ok().and_then(|t| t.trim().parse().ok()),
        ValueRef::Null | ValueRef::Blob(_) => None,
    })
}

/// Text, borrowed from the row when it is valid UTF-8 (invalid bytes are replaced, never an error: a name with a
/// bad byte must not stop a pass); numbers as their decimal form.
pub(crate) fn text<'r>(row: &'r Row<'_>, index: usize) -> rusqlite::Result<Option<Cow<'r, str>>> {
    Ok(match row.get_ref(index)? {
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => Some(String::from_utf8_lossy(bytes)),
        ValueRef::Integer(value) => Some(Cow::Owned(value.to_string())),
        ValueRef::Real(value) => Some(Cow::Owned(value.to_string())),
        ValueRef::Null => None,
    })
}

/// Text as an owned string (for values kept past the row).
pub(crate) fn string(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<String>> {
    Ok(text(row, index)?.map(Cow::into_owned))
}

/// `text` in Unicode NFC (canonical composition). Copies ASCII and already-composed text without rewriting it.
pub(crate) fn nfc(text: &str) -> String {
    if text.is_ascii() || is_nfc_quick(text.chars()) == IsNormalized::Yes {
        text.to_owned()
    } else {
        text.nfc().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_coerced_like_sqlite_does() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.query_row("SELECT 7, 2.9, ' 12 ', NULL, 'x', X'6869', 3", [], |row| {
            assert_eq!(int(row, 0)?, Some(7));
            assert_eq!(int(row, 1)?, Some(2));
            assert_eq!(int(row, 2)?, Some(12));
            assert_eq!(int(row, 3)?, None);
            assert_eq!(int(row, 4)?, None);
            assert_eq!(real(row, 0)?, Some(7.0));
            assert_eq!(real(row, 1)?, Some(2.9));
            assert_eq!(text(row, 4)?.as_deref(), Some("x"));
            assert_eq!(text(row, 5)?.as_deref(), Some("hi"));
            assert_eq!(string(row, 6)?.as_deref(), Some("3"));
            assert_eq!(text(row, 3)?, None);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn decomposed_text_is_composed() {
        assert_eq!(nfc("Val d'Ise\u{300}re"), "Val d'Is\u{e8}re");
        assert_eq!(nfc("Fri\u{301}test.jpg"), "Fr\u{ed}test.jpg");
        assert_eq!(nfc("\u{c1}gua"), "\u{c1}gua");
        assert_eq!(nfc("plain"), "plain");
    }
}
