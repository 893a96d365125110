-- Photo history as before-images (the ingest rate). Migration 0008 wrote one `photo_history` row per NEW
-- photo, a JSON snapshot of the row just inserted, inside the batch's write lock: a new photo cost two rows
-- and the sync's ingest rate fell under its goal. From here on a row records what a change REPLACED, as
-- `resource_history` always did, and inserting a photo records nothing (the `photos` row is its first state):
-- - a row is written by each change of a photo (new version, delete or undelete, new metadata): `version`,
--   `changed_at` and `change` are the change's own, as before; `snapshot` is the metadata the photo had just
--   BEFORE it (with that state's `library_id` and `before_version`);
-- - a row whose `snapshot` is NULL is a marker: a state began at its `version`/`changed_at`/`change`, and
--   what came before it is not kept (the purge's cut, or the first row of a photo converted below);
-- - the states of a photo, oldest first: its first state (unless its first row is a marker), begun at
--   `photos.created_at` with `before_version` of its first row, then one per row, each with the snapshot of the
--   next row, the last with the photo's current row (the view `photo_snapshots` builds its snapshot with
--   the expression the trigger uses). The state as of a time T is the one begun last at or before T: its
--   snapshot is in the row after the one that began it (with times in order: the earliest row with
--   `changed_at` > T), or the photo's current row; a photo created after T did not exist then.
-- `catalog/sql/before_images.rs` derives the states; `history.rs` lists them, `restore.rs` restores them.
-- Rows written before this migration (after-images) are converted, none lost: each photo's rows, in
-- version order, keep their own version, time and change, and take the snapshot, library and version of the
-- row before them; a photo's first row becomes a marker (its snapshot lives on in the next row, or is the
-- photo's current row). Albums keep after-images: an album is written once per library sync, not per photo.

DROP TRIGGER icloud.photos_history_insert;
DROP TRIGGER icloud.photos_history_update;
DROP TRIGGER icloud.resources_history_insert;

CREATE TABLE icloud.photo_history_converted (
    id              INTEGER PRIMARY KEY,
    user_id         TEXT NOT NULL,
    photo_id        TEXT NOT NULL,
    library_id      TEXT NOT NULL,
    version         INTEGER NOT NULL,
    changed_at      INTEGER NOT NULL,
    change          TEXT NOT NULL CHECK (change IN ('created', 'updated', 'deleted', 'restored')),
    before_version  INTEGER,
    snapshot        TEXT
);
INSERT INTO icloud.photo_history_converted
    (id, user_id, photo_id, library_id, version, changed_at, change, before_version, snapshot)
SELECT id, user_id, photo_id, COALESCE(before_library, library_id), version, changed_at, change,
    before_version, before_snapshot
FROM (
    SELECT h.*,
        LAG(library_id) OVER w AS before_library,
        LAG(version) OVER w AS before_version,
        LAG(snapshot) OVER w AS before_snapshot
    FROM icloud.photo_history h
    WINDOW w AS (PARTITION BY user_id, photo_id ORDER BY version, id)
);
DROP TABLE icloud.photo_history;
ALTER TABLE icloud.photo_history_converted RENAME TO photo_history;
CREATE INDEX icloud.photo_history_by_photo ON photo_history (user_id, photo_id, version);
CREATE INDEX icloud.photo_history_by_time ON photo_history (user_id, changed_at);

-- The current state's snapshot, the same document the trigger below builds (keep them in step).
CREATE VIEW icloud.photo_snapshots AS
SELECT id, user_id, library_id, version, created_at,
    json_object('local_identifier', local_identifier, 'cloud_guid', cloud_guid,
        'fingerprint', fingerprint, 'kind', kind, 'subtype', subtype,
        'live_photo', json(CASE WHEN live_photo THEN 'true' ELSE 'false' END),
        'width', width, 'height', height, 'duration_ms', duration_ms,
        'taken_at', taken_at, 'taken_at_offset_s', taken_at_offset_s, 'time_zone', time_zone,
        'modified_at', modified_at,
        'favorite', json(CASE WHEN favorite THEN 'true' ELSE 'false' END),
        'hidden', json(CASE WHEN hidden THEN 'true' ELSE 'false' END),
        'trashed', json(CASE WHEN trashed THEN 'true' ELSE 'false' END),
        'latitude', latitude, 'longitude', longitude,
        'original_filename', original_filename, 'uti', uti,
        'edited', json(CASE WHEN edited THEN 'true' ELSE 'false' END),
        'title', title, 'caption', caption, 'keywords', json(keywords),
        'people', json(people), 'metadata_sha256', metadata_sha256, 'deleted_at', deleted_at) AS snapshot
FROM photos;

-- A row per new version (metadata, resources, enrichment) and per delete or undelete, holding the OLD row.
CREATE TRIGGER icloud.photos_history_update AFTER UPDATE ON photos
WHEN OLD.version IS NOT NEW.version OR OLD.deleted_at IS NOT NEW.deleted_at
    OR OLD.metadata_sha256 IS NOT NEW.metadata_sha256
BEGIN
    INSERT INTO photo_history (user_id, photo_id, library_id, version, changed_at, change, before_version,
        snapshot)
    VALUES (NEW.user_id, NEW.id, OLD.library_id, NEW.version,
        CASE WHEN NEW.updated_at IS OLD.updated_at
            THEN MAX(CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER), NEW.updated_at)
            ELSE NEW.updated_at END,
        CASE WHEN NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL THEN 'deleted' ELSE 'updated' END,
        OLD.version,
        json_object('local_identifier', OLD.local_identifier, 'cloud_guid', OLD.cloud_guid,
            'fingerprint', OLD.fingerprint, 'kind', OLD.kind, 'subtype', OLD.subtype,
            'live_photo', json(CASE WHEN OLD.live_photo THEN 'true' ELSE 'false' END),
            'width', OLD.width, 'height', OLD.height, 'duration_ms', OLD.duration_ms,
            'taken_at', OLD.taken_at, 'taken_at_offset_s', OLD.taken_at_offset_s, 'time_zone', OLD.time_zone,
            'modified_at', OLD.modified_at,
            'favorite', json(CASE WHEN OLD.favorite THEN 'true' ELSE 'false' END),
            'hidden', json(CASE WHEN OLD.hidden THEN 'true' ELSE 'false' END),
            'trashed', json(CASE WHEN OLD.trashed THEN 'true' ELSE 'false' END),
            'latitude', OLD.latitude, 'longitude', OLD.longitude,
            'original_filename', OLD.original_filename, 'uti', OLD.uti,
            'edited', json(CASE WHEN OLD.edited THEN 'true' ELSE 'false' END),
            'title', OLD.title, 'caption', OLD.caption, 'keywords', json(OLD.keywords),
            'people', json(OLD.people), 'metadata_sha256', OLD.metadata_sha256, 'deleted_at', OLD.deleted_at));
END;

-- A resource written with its photo's first row still needs no `created` row (a restore to a time before
-- that makes the whole photo a tombstone). That photo now has no history row to say so: it is the one at the
-- user's current version, written once (`created_at` = `updated_at`), with no history row at that version
-- (a photo changed in this version has one, written before its resources).
CREATE TRIGGER icloud.resources_history_insert AFTER INSERT ON resources
WHEN NOT EXISTS (SELECT 1 FROM photos p WHERE p.id = NEW.photo_id
    AND p.version = (SELECT version FROM versions WHERE user_id = NEW.user_id) AND p.created_at = p.updated_at
    AND NOT EXISTS (SELECT 1 FROM photo_history h WHERE h.user_id = NEW.user_id AND h.photo_id = NEW.photo_id
        AND h.version = p.version))
BEGIN
    INSERT INTO resource_history (user_id, photo_id, resource_type, version, changed_at, change)
    VALUES (NEW.user_id, NEW.photo_id, NEW.resource_type,
        COALESCE((SELECT version FROM versions WHERE user_id = NEW.user_id), 0),
        MAX(CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER),
            COALESCE((SELECT updated_at FROM photos WHERE id = NEW.photo_id), 0)),
        'created');
END;
