//! The sync path's lookups use indexes on SQLite, where the planner has no statistics to go by: a scan here
//! makes every sync batch slower as the library grows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use server::catalog::{self, ConnectOptions, Location};
use sqlx::{Connection as _, Row as _};

async fn plan(conn: &mut sqlx::SqliteConnection, sql: &str) -> String {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
        .fetch_all(conn)
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.get::<String, _>("detail"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test]
async fn sync_lookups_search_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::sqlite_in(dir.path());
    catalog::connect(&location, &ConnectOptions::default())
        .await
        .unwrap();
    let Location::Sqlite { main, icloud } = &location else {
        unreachable!()
    };
    // One connection: ATTACH is per connection.
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", main.display()))
        .await
        .unwrap();
    sqlx::query("ATTACH DATABASE $1 AS icloud")
        .bind(icloud.display().to_string())
        .execute(&mut conn)
        .await
        .unwrap();
    let hundred = (0..100)
        .map(|i| format!("'id{i}'"))
        .collect::<Vec<_>>()
        .join(", ");
    for (sql, index) in [
        (
            &format!("SELECT photo_id FROM icloud.resources WHERE user_id = 'u' AND photo_id IN ({hundred})"),
            "resources_by_user_photo",
        ),
        // A sync batch's lookup of its photos (100 identifiers, as the agent sends them: with two, SQLite
        // chose the right index even when it would not for a hundred).
        (
            &format!(
                "SELECT id FROM icloud.photos WHERE library_id = 'l' \
                 AND library_id IN (SELECT l.id FROM icloud.libraries l WHERE l.user_id = 'u') \
                 AND local_identifier IN ({hundred})"
            ),
            "(library_id=? AND local_identifier=?)",
        ),
        (
            &format!("SELECT sha256 FROM icloud.blobs WHERE user_id = 'u' AND sha256 IN ({hundred})"),
            "INDEX",
        ),
        // The upload route's lookup by identifier alone (Catalog::resource_for_upload).
        (
            &String::from(
                "SELECT p.id FROM icloud.libraries l CROSS JOIN icloud.photos p \
             WHERE l.user_id = 'u' AND ('l' IS NULL OR l.id = 'l') \
               AND p.library_id = l.id AND p.local_identifier = 'a' AND p.user_id = 'u' LIMIT 2",
            ),
            "(library_id=? AND local_identifier=?)",
        ),
        // A photo's identifier in the library holding a resource, as the pending list reads it for a photo
        // synced from two Macs: one probe of (photo, library), not a walk of the library's aliases.
        (
            &String::from(
                "SELECT (SELECT a.local_identifier FROM icloud.photo_aliases a WHERE a.photo_id = p.id \
                 AND a.library_id = 'l' AND a.deleted_at IS NULL LIMIT 1) FROM icloud.photos p WHERE p.id = 'x'",
            ),
            "photo_aliases_by_photo (photo_id=? AND library_id=?)",
        ),
        // A batch's identifiers among the library's aliases (Catalog::sync_photos of a user with two Macs).
        (
            &format!(
                "SELECT local_identifier, photo_id FROM icloud.photo_aliases \
                 WHERE library_id = 'l' AND user_id = 'u' AND local_identifier IN ({hundred})"
            ),
            "(library_id=? AND local_identifier=?)",
        ),
        // Matching candidates: by cloud GUID, and by fingerprint among photos without one (the NULL range of
        // the GUID index: no index of their own for every batch to write).
        (
            &format!(
                "SELECT id FROM icloud.photos WHERE user_id = 'u' AND deleted_at IS NULL \
                 AND cloud_guid IS NULL AND fingerprint IN ({hundred}) ORDER BY created_at, id"
            ),
            "photos_by_cloud_guid (user_id=? AND cloud_guid=?)",
        ),
    ] {
        let plan = plan(&mut conn, sql).await;
        assert!(plan.contains(index), "{sql}\n  plan: {plan}");
        assert!(!plan.contains("SCAN"), "{sql}\n  plan: {plan}");
    }
}

/// The web timeline's page queries, as the route builds them, on each database: an index range read in the
/// list's order (no sort of the user's photos, no scan of the table), first page and deep page alike.
mod timeline {
    use std::sync::Arc;

    use server::catalog::{
        self, AssetKind, Catalog, ConnectOptions, Location, PhotoFilter, TimelineKey, TimelineQuery, UserId,
    };

    fn queries() -> Vec<(&'static str, TimelineQuery, &'static str)> {
        let page = |filter: PhotoFilter, after: Option<TimelineKey>| TimelineQuery {
            filter,
            limit: 100,
            after,
            before_local_ms: None,
        };
        let deep = Some(TimelineKey {
            taken_at_ms: 1_500_000_000_000,
            photo_id: "00000000000000000000000000000abc".into(),
        });
        vec![
            (
                "first page",
                page(PhotoFilter::default(), None),
                "photos_timeline",
            ),
            (
                "deep page",
                page(PhotoFilter::default(), deep.clone()),
                "photos_timeline",
            ),
            (
                "videos",
                page(
                    PhotoFilter {
                        kind: Some(AssetKind::Video),
                        ..Default::default()
                    },
                    deep.clone(),
                ),
                "photos_timeline_by_kind",
            ),
            (
                "favourites",
                page(
                    PhotoFilter {
                        favorite: Some(true),
                        ..Default::default()
                    },
                    deep.clone(),
                ),
                "photos_timeline_favorites",
            ),
            (
                // The scrubber's jump to a month (20 years back would be the same range read).
                "month jump",
                TimelineQuery {
                    before_local_ms: Some(1_400_000_600_000),
                    ..page(PhotoFilter::default(), None)
                },
                "photos_timeline",
            ),
            (
                "hidden and trashed too",
                page(
                    PhotoFilter {
                        include_hidden: true,
                        include_trashed: true,
                        ..Default::default()
                    },
                    deep,
                ),
                "photos_by_user_taken",
            ),
        ]
    }

    /// 20,000 photos of one user (one in ten a video, one in fifty a favourite, 1 % hidden, 1 % trashed),
    /// inserted with one statement so the test stays fast.
    async fn fill(catalog: &Arc<dyn Catalog>, execute: impl AsyncFnOnce(String, String)) -> UserId {
        let user = catalog.create_user("plan").await.unwrap();
        let library = catalog.ensure_library(&user.id, "L").await.unwrap();
        execute(user.id.to_string(), library.id.to_string()).await;
        user.id
    }

    /// The bulk insert; `id` is the driver's expression for a 32-hex-digit id from `i`.
    fn insert_sql(id: &str) -> String {
        format!(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 20000) \
             INSERT INTO icloud.photos (id, user_id, library_id, local_identifier, kind, live_photo, width, \
                 height, taken_at, taken_at_offset_s, modified_at, favorite, hidden, trashed, original_filename, \
                 uti, edited, keywords, people, metadata_sha256, version, created_at, updated_at) \
             SELECT {id}, $1, $2, 'U' || i || '/L0/001', CASE WHEN i % 10 = 0 THEN 'video' ELSE 'photo' END, \
                 FALSE, 4032, 3024, 1400000000000 + i * 60000, 0, 0, i % 50 = 0, i % 100 = 1, i % 100 = 2, \
                 'IMG.HEIC', 'public.heic', FALSE, '[]', '[]', '', 1, 0, 0 FROM s"
        )
    }

    async fn check(catalog: &Arc<dyn Catalog>, user: &UserId, postgres: bool) {
        let mut plans = Vec::new();
        for (name, query, index) in queries() {
            plans.push((
                name.to_owned(),
                catalog.explain_timeline(user, &query).await.unwrap(),
                index,
            ));
            // The photo page's previous and next from a photo mid-list: the same index, read either way.
            if query.before_local_ms.is_none() {
                let key = TimelineKey {
                    taken_at_ms: 1_400_000_000_000 + 10_000 * 60_000,
                    photo_id: "00000000000000000000000000002710".into(),
                };
                let plan = catalog
                    .explain_neighbours(user, &query.filter, &key)
                    .await
                    .unwrap();
                assert!(
                    plan.matches(index).count() >= 2,
                    "{name} neighbours: both reads use {index}\n{plan}"
                );
                plans.push((format!("{name} neighbours"), plan, index));
            }
        }
        for (name, plan, index) in plans {
            assert!(plan.contains(index), "{name}: expected {index}\n{plan}");
            if postgres {
                assert!(!plan.contains("Sort"), "{name}: sorts\n{plan}");
                assert!(!plan.contains("Seq Scan on photos"), "{name}: scans\n{plan}");
            } else {
                assert!(!plan.contains("TEMP B-TREE"), "{name}: sorts\n{plan}");
                assert!(!plan.contains("SCAN p"), "{name}: scans\n{plan}");
            }
        }
    }

    #[tokio::test]
    async fn sqlite_pages_read_an_index_range() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::sqlite_in(dir.path());
        let catalog = catalog::connect(&location, &ConnectOptions::default())
            .await
            .unwrap();
        let Location::Sqlite { main, icloud } = &location else {
            unreachable!()
        };
        let (main, icloud) = (main.clone(), icloud.clone());
        let user = fill(&catalog, async |user, library| {
            use sqlx::Connection as _;
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", main.display()))
                .await
                .unwrap();
            sqlx::query("ATTACH DATABASE $1 AS icloud")
                .bind(icloud.display().to_string())
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(insert_sql("printf('%032x', i)")))
                .bind(user)
                .bind(library)
                .execute(&mut conn)
                .await
                .unwrap();
        })
        .await;
        check(&catalog, &user, false).await;
    }

    #[tokio::test]
    async fn postgres_pages_read_an_index_range() {
        let url = harness::Postgres::shared().fresh_database().unwrap();
        let catalog = catalog::connect(
            &Location::Postgres { url: url.clone() },
            &ConnectOptions::default(),
        )
        .await
        .unwrap();
        let user = fill(&catalog, async |user, library| {
            use sqlx::Connection as _;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(insert_sql("lpad(to_hex(i), 32, '0')")))
                .bind(user)
                .bind(library)
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query("ANALYZE icloud.photos")
                .execute(&mut conn)
                .await
                .unwrap();
        })
        .await;
        check(&catalog, &user, true).await;
    }
}

/// The date scrubber's month counts and search, on a catalog of two users (the one asked about holds a
/// fifth of the photos, as on a shared server): the counts read the covering index `photos_months` and
/// never a table row, a search for a rare word starts from the search index rather than walking the
/// timeline, and the index answers what the definition says.
mod scrubber_and_search {
    use std::sync::Arc;

    use server::catalog::search::SearchTerms;
    use server::catalog::{self, Catalog, ConnectOptions, Location, PhotoFilter, TimelineQuery, UserId};

    /// Photos `first..=last` of `$1` in library `$2`, each with searchable words (`w<i>` its own); `id`
    /// is the driver's expression for a 32-hex-digit id from `i`.
    fn insert_sql(id: &str, first: u32, last: u32) -> String {
        format!(
            "WITH RECURSIVE s(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM s WHERE i < {last}) \
             INSERT INTO icloud.photos (id, user_id, library_id, local_identifier, kind, live_photo, width, \
                 height, taken_at, taken_at_offset_s, modified_at, favorite, hidden, trashed, original_filename, \
                 uti, edited, keywords, people, metadata_sha256, version, created_at, updated_at, search_text) \
             SELECT {id}, $1, $2, 'U' || i || '/L0/001', 'photo', FALSE, 4032, 3024, \
                 1400000000000 + i * CAST(600000 AS BIGINT), 3600, 0, FALSE, i % 100 = 1, i % 100 = 2, 'IMG.HEIC', 'public.heic', \
                 FALSE, '[]', '[]', '', 1, 0, 0, 'heic img w' || i FROM s"
        )
    }

    /// Two users, the first with photos 1 to 20,000, the second with 20,001 to 100,000; the first's id.
    async fn fill(catalog: &Arc<dyn Catalog>, execute: impl AsyncFnOnce(Vec<(String, String)>)) -> UserId {
        let mut owners = Vec::new();
        for name in ["asked", "other"] {
            let user = catalog.create_user(name).await.unwrap();
            let library = catalog.ensure_library(&user.id, "L").await.unwrap();
            owners.push((user.id.to_string(), library.id.to_string()));
        }
        execute(owners).await;
        catalog.find_user_by_name("asked").await.unwrap().unwrap().id
    }

    /// The scrubber's month counts read the covering index `photos_months` (never a table row), and a
    /// search for a rare word starts from the search index rather than walking the timeline.
    async fn check(catalog: &Arc<dyn Catalog>, user: &UserId, postgres: bool) {
        let plan = catalog
            .explain_months(user, &PhotoFilter::default())
            .await
            .unwrap();
        if postgres {
            assert!(
                plan.contains("Index Only Scan using photos_months"),
                "months\n{plan}"
            );
        } else {
            assert!(
                plan.contains("USING COVERING INDEX photos_months"),
                "months\n{plan}"
            );
        }
        let search = TimelineQuery {
            filter: PhotoFilter {
                search: Some(SearchTerms::parse("W1234").unwrap()),
                ..Default::default()
            },
            limit: 100,
            after: None,
            before_local_ms: None,
        };
        let plan = catalog.explain_timeline(user, &search).await.unwrap();
        if postgres {
            assert!(plan.contains("photos_search"), "search\n{plan}");
            assert!(!plan.contains("Seq Scan on photos"), "search scans\n{plan}");
        } else {
            assert!(plan.contains("photo_search VIRTUAL TABLE"), "search\n{plan}");
            assert!(
                !plan.contains("SCAN p\n") && !plan.ends_with("SCAN p"),
                "search scans\n{plan}"
            );
        }
        // And the index answers: the ten photos whose word starts with w1234, and w1234 itself.
        let found = catalog.list_photos(user, &search).await.unwrap();
        assert_eq!(found.len(), 11, "{found:?}");
    }

    #[tokio::test]
    async fn sqlite_counts_and_search_read_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::sqlite_in(dir.path());
        let catalog = catalog::connect(&location, &ConnectOptions::default())
            .await
            .unwrap();
        let Location::Sqlite { main, icloud } = &location else {
            unreachable!()
        };
        let (main, icloud) = (main.clone(), icloud.clone());
        let user = fill(&catalog, async |owners| {
            use sqlx::Connection as _;
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", main.display()))
                .await
                .unwrap();
            sqlx::query("ATTACH DATABASE $1 AS icloud")
                .bind(icloud.display().to_string())
                .execute(&mut conn)
                .await
                .unwrap();
            for ((user, library), (first, last)) in owners.into_iter().zip([(1, 20_000), (20_001, 100_000)]) {
                sqlx::query(sqlx::AssertSqlSafe(insert_sql("printf('%032x', i)", first, last)))
                    .bind(user)
                    .bind(library)
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        })
        .await;
        check(&catalog, &user, false).await;
    }

    #[tokio::test]
    async fn postgres_counts_and_search_read_their_indexes() {
        let url = harness::Postgres::shared().fresh_database().unwrap();
        let catalog = catalog::connect(
            &Location::Postgres { url: url.clone() },
            &ConnectOptions::default(),
        )
        .await
        .unwrap();
        let user = fill(&catalog, async |owners| {
            use sqlx::Connection as _;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            for ((user, library), (first, last)) in owners.into_iter().zip([(1, 20_000), (20_001, 100_000)]) {
                sqlx::query(sqlx::AssertSqlSafe(insert_sql(
                    "lpad(to_hex(i), 32, '0')",
                    first,
                    last,
                )))
                .bind(user)
                .bind(library)
                .execute(&mut conn)
                .await
                .unwrap();
            }
            // VACUUM too: the month counts read an index only, which needs the visibility map (autovacuum
            // sets it on a live server). A VACUUM cannot mark pages all-visible while another session's
            // older snapshot is open (the other tests share this PostgreSQL), so it is repeated until it did.
            for _ in 0..40 {
                sqlx::query("VACUUM ANALYZE icloud.photos")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let visible: bool = sqlx::query_scalar(
                    "SELECT relallvisible >= relpages FROM pg_class WHERE oid = 'icloud.photos'::regclass",
                )
                .fetch_one(&mut conn)
                .await
                .unwrap();
                if visible {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        })
        .await;
        check(&catalog, &user, true).await;
    }
}
