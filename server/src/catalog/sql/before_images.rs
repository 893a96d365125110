//! The states of a photo, derived from its `photo_history` rows and its current row. Since migration 0012 a
//! history row holds what a change REPLACED (a before-image), and inserting a photo writes no row, so the
//! metadata a photo had after a change is in the next row, or in the photo itself after its last change. See
//! `migrations/sqlite/0012_history_before_images.sql` for the format; `history.rs` lists the states and
//! `restore.rs` goes back to one.

use sqlx::Row as _;

use super::Conn;
use crate::catalog::Result;

/// One `photo_history` row: a change (its version, time and kind) and the metadata it replaced.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Recorded {
    /// The change's version.
    pub(super) version: i64,
    /// When the change was made (epoch ms).
    pub(super) changed_at: i64,
    /// `created`, `updated`, `deleted` or `restored`.
    pub(super) change: String,
    /// The library of the replaced state.
    pub(super) library_id: String,
    /// The version of the replaced state.
    pub(super) before_version: Option<i64>,
    /// The replaced state's metadata; `None`: a marker (the state before it is not kept).
    pub(super) snapshot: Option<String>,
}

/// The photo as it is now (`icloud.photo_snapshots`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Current {
    pub(super) version: i64,
    pub(super) library_id: String,
    pub(super) created_at: i64,
    /// The same document a history row holds.
    pub(super) snapshot: String,
}

/// One state of a photo: begun by a change, as it was until the next one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct State<'a> {
    /// The version of the change that began it.
    pub(super) version: i64,
    /// When it began (epoch ms).
    pub(super) changed_at: i64,
    /// How it began (`created` for the photo's first state).
    pub(super) change: &'a str,
    pub(super) library_id: &'a str,
    /// Its metadata (`None`: not kept, which only a marker after another row can cause).
    pub(super) snapshot: Option<&'a str>,
}

/// The photo's rows (in version order) and its current row; `None` when there is no such photo.
pub(super) async fn load(
    conn: &mut Conn,
    user_id: &str,
    photo_id: &str,
) -> Result<Option<(Vec<Recorded>, Current)>> {
    let current = sqlx::query(
        "SELECT version, library_id, created_at, snapshot FROM icloud.photo_snapshots \
         WHERE id = $1 AND user_id = $2",
    )
    .bind(photo_id)
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(current) = current else {
        return Ok(None);
    };
    let current = Current {
        version: current.try_get("version")?,
        library_id: current.try_get("library_id")?,
        created_at: current.try_get("created_at")?,
        snapshot: current.try_get("snapshot")?,
    };
    let rows = sqlx::query(
        "SELECT version, changed_at, change, library_id, before_version, snapshot FROM icloud.photo_history \
         WHERE user_id = $1 AND photo_id = $2 ORDER BY version, id",
    )
    .bind(user_id)
    .bind(photo_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut recorded = Vec::with_capacity(rows.len());
    for row in rows {
        recorded.push(Recorded {
            version: row.try_get("version")?,
            changed_at: row.try_get("changed_at")?,
            change: row.try_get("change")?,
            library_id: row.try_get("library_id")?,
            before_version: row.try_get("before_version")?,
            snapshot: row.try_get("snapshot")?,
        });
    }
    Ok(Some((recorded, current)))
}

/// The photo's states, oldest first: its first state unless the first row is a marker (begun when the
/// photo was created, which always writes a live photo), then one per row, each with the metadata the next
/// row replaced, the last with the photo's current row.
pub(super) fn states<'a>(rows: &'a [Recorded], current: &'a Current) -> Vec<State<'a>> {
    let mut states = Vec::with_capacity(rows.len() + 1);
    let first = rows.first();
    if first.is_none_or(|row| row.snapshot.is_some()) {
        states.push(State {
            version: first.map_or(current.version, |row| row.before_version.unwrap_or(row.version)),
            changed_at: current.created_at,
            change: "created",
            library_id: first.map_or(current.library_id.as_str(), |row| row.library_id.as_str()),
            snapshot: first.map_or(Some(current.snapshot.as_str()), |row| row.snapshot.as_deref()),
        });
    }
    for (n, row) in rows.iter().enumerate() {
        let (library_id, snapshot) = match rows.get(n + 1) {
            Some(next) => (next.library_id.as_str(), next.snapshot.as_deref()),
            None => (current.library_id.as_str(), Some(current.snapshot.as_str())),
        };
        states.push(State {
            version: row.version,
            changed_at: row.changed_at,
            change: row.change.as_str(),
            library_id,
            snapshot,
        });
    }
    states
}

/// The state in effect at `as_of`: the one begun last at or before it (the latest `changed_at`, then the
/// latest change). `None`: the photo's first known state began after it.
pub(super) fn state_at<'a>(states: &[State<'a>], as_of: i64) -> Option<State<'a>> {
    let mut found: Option<State<'a>> = None;
    for state in states.iter().filter(|s| s.changed_at <= as_of) {
        if found.is_none_or(|f| state.changed_at >= f.changed_at) {
            found = Some(*state);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(version: i64, changed_at: i64, change: &str, before: Option<(i64, &str)>) -> Recorded {
        Recorded {
            version,
            changed_at,
            change: change.to_owned(),
            library_id: "L".to_owned(),
            before_version: before.map(|(v, _)| v),
            snapshot: before.map(|(_, s)| s.to_owned()),
        }
    }

    fn current(version: i64, created_at: i64, snapshot: &str) -> Current {
        Current {
            version,
            library_id: "L".to_owned(),
            created_at,
            snapshot: snapshot.to_owned(),
        }
    }

    fn summary<'a>(states: &[State<'a>]) -> Vec<(i64, i64, &'a str, Option<&'a str>)> {
        states
            .iter()
            .map(|s| (s.version, s.changed_at, s.change, s.snapshot))
            .collect()
    }

    #[test]
    fn a_photo_never_changed_has_its_current_row_as_its_only_state() {
        let now = current(3, 100, "a");
        let states = states(&[], &now);
        assert_eq!(summary(&states), vec![(3, 100, "created", Some("a"))]);
        assert_eq!(state_at(&states, 99), None, "created after that time");
        assert_eq!(state_at(&states, 100).unwrap().snapshot, Some("a"));
    }

    #[test]
    fn each_row_holds_the_state_before_it() {
        // Created at 100 (version 1) as "a", updated at 200 (v2) to "b", deleted at 300 (v3) as "c".
        let rows = [
            row(2, 200, "updated", Some((1, "a"))),
            row(3, 300, "deleted", Some((2, "b"))),
        ];
        let now = current(3, 100, "c");
        let states = states(&rows, &now);
        assert_eq!(
            summary(&states),
            vec![
                (1, 100, "created", Some("a")),
                (2, 200, "updated", Some("b")),
                (3, 300, "deleted", Some("c")),
            ]
        );
        let at = |t| state_at(&states, t).and_then(|s| s.snapshot);
        assert_eq!(
            [at(99), at(100), at(199), at(200), at(299), at(300), at(1000)],
            [
                None,
                Some("a"),
                Some("a"),
                Some("b"),
                Some("b"),
                Some("c"),
                Some("c")
            ]
        );
    }

    #[test]
    fn a_marker_begins_the_kept_history() {
        // The purge cut everything before the change at 200; the state it began is in the next row.
        let rows = [
            row(2, 200, "updated", None),
            row(3, 300, "updated", Some((2, "b"))),
        ];
        let now = current(3, 100, "c");
        let states = states(&rows, &now);
        assert_eq!(
            summary(&states),
            vec![(2, 200, "updated", Some("b")), (3, 300, "updated", Some("c"))]
        );
        assert_eq!(state_at(&states, 150), None, "what it was then is not known");
        assert_eq!(state_at(&states, 250).unwrap().snapshot, Some("b"));
        // A lone marker: the photo's current row is the state it began.
        let rows = [row(2, 200, "updated", None)];
        assert_eq!(
            summary(&self::states(&rows, &now)),
            vec![(2, 200, "updated", Some("c"))]
        );
    }

    #[test]
    fn changes_at_one_instant_resolve_to_the_last() {
        let rows = [
            row(2, 200, "updated", Some((1, "a"))),
            row(3, 200, "updated", Some((2, "b"))),
        ];
        let now = current(3, 100, "c");
        let states = states(&rows, &now);
        assert_eq!(state_at(&states, 200).unwrap().snapshot, Some("c"));
        assert_eq!(state_at(&states, 199).unwrap().snapshot, Some("a"));
    }
}
