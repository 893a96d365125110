-- History and trash (issue 12). Every change to a photo row, a resource's stored object, an album row or an
-- album's membership is recorded by a trigger, so every write path (the sync batch, uploads, dedup links,
-- jobs, restore) is covered without knowing about it and cannot forget a change. What the rows are for:
-- - photo_history: the photo's metadata as it was AFTER each change (`snapshot`, JSON with the column names),
--   for `GET /my/photos/{id}/history` and for restoring a photo as of a time;
-- - resource_history: the OLD stored object of a resource whenever it is replaced or the row goes, so an object
--   superseded at S is still referenced until S + the retention (the GC keeps what any row here names), and a
--   restore can point the resource back at it; a `created` row (no object) marks a resource that did not exist
--   before;
-- - album_history / album_member_history: album rows after each change and each membership added or removed.
-- `changed_at` is epoch milliseconds. Photo and album rows take the time their writer stamped (`updated_at`),
-- or the database clock for a photo whose version moved without a new `updated_at` (an upload, a job); a
-- resource row takes the later of the database clock and its photo's `updated_at`, so it is never earlier
-- than the change it records (an earlier time would let the object go before its retention).
-- The purge (`catalog/sql/history.rs`) drops rows older than the retention, except the last one before it for
-- each photo, album and membership (the state a restore as of the oldest kept time starts from).

CREATE TABLE icloud.photo_history (
    id          INTEGER PRIMARY KEY,
    user_id     TEXT NOT NULL,
    photo_id    TEXT NOT NULL,
    library_id  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    changed_at  INTEGER NOT NULL,
    change      TEXT NOT NULL CHECK (change IN ('created', 'updated', 'deleted', 'restored')),
    snapshot    TEXT NOT NULL
);
CREATE INDEX icloud.photo_history_by_photo ON photo_history (user_id, photo_id, version);
CREATE INDEX icloud.photo_history_by_time ON photo_history (user_id, changed_at);

CREATE TABLE icloud.resource_history (
    id               INTEGER PRIMARY KEY,
    user_id          TEXT NOT NULL,
    photo_id         TEXT NOT NULL,
    resource_type    TEXT NOT NULL,
    version          INTEGER NOT NULL,
    changed_at       INTEGER NOT NULL,
    -- 'created' (the row did not exist before: the values are NULL), 'updated' or 'deleted'.
    change           TEXT NOT NULL CHECK (change IN ('created', 'updated', 'deleted')),
    stored_key       TEXT,
    stored_sha256    TEXT,
    stored_size      INTEGER,
    declared_sha256  TEXT,
    declared_size    INTEGER,
    state            TEXT
);
CREATE INDEX icloud.resource_history_by_key ON resource_history (user_id, stored_key);
CREATE INDEX icloud.resource_history_by_photo ON resource_history (user_id, photo_id, changed_at);
CREATE INDEX icloud.resource_history_by_time ON resource_history (changed_at);

CREATE TABLE icloud.album_history (
    id          INTEGER PRIMARY KEY,
    user_id     TEXT NOT NULL,
    album_id    TEXT NOT NULL,
    library_id  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    changed_at  INTEGER NOT NULL,
    snapshot    TEXT NOT NULL
);
CREATE INDEX icloud.album_history_by_album ON album_history (user_id, album_id, changed_at);

CREATE TABLE icloud.album_member_history (
    id          INTEGER PRIMARY KEY,
    user_id     TEXT NOT NULL,
    album_id    TEXT NOT NULL,
    photo_id    TEXT NOT NULL,
    position    INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    changed_at  INTEGER NOT NULL,
    change      TEXT NOT NULL CHECK (change IN ('added', 'removed'))
);
CREATE INDEX icloud.album_member_history_by_album ON album_member_history (user_id, album_id, changed_at);
CREATE INDEX icloud.album_member_history_by_photo ON album_member_history (photo_id);

-- Trigger bodies name tables unqualified: SQLite resolves them in the trigger's own database (`icloud`).

CREATE TRIGGER icloud.photos_history_insert AFTER INSERT ON photos BEGIN
    INSERT INTO photo_history (user_id, photo_id, library_id, version, changed_at, change, snapshot)
    VALUES (NEW.user_id, NEW.id, NEW.library_id, NEW.version, NEW.updated_at,
        CASE WHEN NEW.deleted_at IS NULL THEN 'created' ELSE 'deleted' END,
        json_object('local_identifier', NEW.local_identifier, 'cloud_guid', NEW.cloud_guid,
            'fingerprint', NEW.fingerprint, 'kind', NEW.kind, 'subtype', NEW.subtype,
            'live_photo', json(CASE WHEN NEW.live_photo THEN 'true' ELSE 'false' END),
            'width', NEW.width, 'height', NEW.height, 'duration_ms', NEW.duration_ms,
            'taken_at', NEW.taken_at, 'taken_at_offset_s', NEW.taken_at_offset_s, 'time_zone', NEW.time_zone,
            'modified_at', NEW.modified_at,
            'favorite', json(CASE WHEN NEW.favorite THEN 'true' ELSE 'false' END),
            'hidden', json(CASE WHEN NEW.hidden THEN 'true' ELSE 'false' END),
            'trashed', json(CASE WHEN NEW.trashed THEN 'true' ELSE 'false' END),
            'latitude', NEW.latitude, 'longitude', NEW.longitude,
            'original_filename', NEW.original_filename, 'uti', NEW.uti,
            'edited', json(CASE WHEN NEW.edited THEN 'true' ELSE 'false' END),
            'title', NEW.title, 'caption', NEW.caption, 'keywords', json(NEW.keywords),
            'people', json(NEW.people), 'metadata_sha256', NEW.metadata_sha256, 'deleted_at', NEW.deleted_at));
END;

-- A row per new version (metadata, resources, enrichment) and per delete or undelete.
CREATE TRIGGER icloud.photos_history_update AFTER UPDATE ON photos
WHEN OLD.version IS NOT NEW.version OR OLD.deleted_at IS NOT NEW.deleted_at
    OR OLD.metadata_sha256 IS NOT NEW.metadata_sha256
BEGIN
    INSERT INTO photo_history (user_id, photo_id, library_id, version, changed_at, change, snapshot)
    VALUES (NEW.user_id, NEW.id, NEW.library_id, NEW.version,
        CASE WHEN NEW.updated_at IS OLD.updated_at
            THEN MAX(CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER), NEW.updated_at)
            ELSE NEW.updated_at END,
        CASE WHEN NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL THEN 'deleted' ELSE 'updated' END,
        json_object('local_identifier', NEW.local_identifier, 'cloud_guid', NEW.cloud_guid,
            'fingerprint', NEW.fingerprint, 'kind', NEW.kind, 'subtype', NEW.subtype,
            'live_photo', json(CASE WHEN NEW.live_photo THEN 'true' ELSE 'false' END),
            'width', NEW.width, 'height', NEW.height, 'duration_ms', NEW.duration_ms,
            'taken_at', NEW.taken_at, 'taken_at_offset_s', NEW.taken_at_offset_s, 'time_zone', NEW.time_zone,
            'modified_at', NEW.modified_at,
            'favorite', json(CASE WHEN NEW.favorite THEN 'true' ELSE 'false' END),
            'hidden', json(CASE WHEN NEW.hidden THEN 'true' ELSE 'false' END),
            'trashed', json(CASE WHEN NEW.trashed THEN 'true' ELSE 'false' END),
            'latitude', NEW.latitude, 'longitude', NEW.longitude,
            'original_filename', NEW.original_filename, 'uti', NEW.uti,
            'edited', json(CASE WHEN NEW.edited THEN 'true' ELSE 'false' END),
            'title', NEW.title, 'caption', NEW.caption, 'keywords', json(NEW.keywords),
            'people', json(NEW.people), 'metadata_sha256', NEW.metadata_sha256, 'deleted_at', NEW.deleted_at));
END;

-- A resource written with its photo's first row needs no `created` row: a restore to a time before that
-- makes the whole photo a tombstone. Leaving those out keeps a new photo at one history row (the sync's
-- ingest rate is bound by rows written).
CREATE TRIGGER icloud.resources_history_insert AFTER INSERT ON resources
WHEN NOT EXISTS (SELECT 1 FROM photo_history h WHERE h.user_id = NEW.user_id AND h.photo_id = NEW.photo_id
    AND h.version = (SELECT version FROM versions WHERE user_id = NEW.user_id) AND h.change = 'created')
BEGIN
    INSERT INTO resource_history (user_id, photo_id, resource_type, version, changed_at, change)
    VALUES (NEW.user_id, NEW.photo_id, NEW.resource_type,
        COALESCE((SELECT version FROM versions WHERE user_id = NEW.user_id), 0),
        MAX(CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER),
            COALESCE((SELECT updated_at FROM photos WHERE id = NEW.photo_id), 0)),
        'created');
END;

CREATE TRIGGER icloud.resources_history_update AFTER UPDATE ON resources
WHEN OLD.stored_key IS NOT NEW.stored_key OR OLD.stored_sha256 IS NOT NEW.stored_sha256
BEGIN
    INSERT INTO resource_history (user_id, photo_id, resource_type, version, changed_at, change, stored_key,
        stored_sha256, stored_size, declared_sha256, declared_size, state)
    VALUES (OLD.user_id, OLD.photo_id, OLD.resource_type,
        COALESCE((SELECT version FROM versions WHERE user_id = OLD.user_id), 0),
        MAX(CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER),
            COALESCE((SELECT updated_at FROM photos WHERE id = OLD.photo_id), 0)),
        'updated', OLD.stored_key, OLD.stored_sha256, OLD.stored_size, OLD.declared_sha256,
        OLD.declared_size, OLD.state);
END;

CREATE TRIGGER icloud.resources_history_delete AFTER DELETE ON resources BEGIN
    INSERT INTO resource_history (user_id, photo_id, resource_type, version, changed_at, change, stored_key,
        stored_sha256, stored_size, declared_sha256, declared_size, state)
    VALUES (OLD.user_id, OLD.photo_id, OLD.resource_type,
        COALESCE((SELECT version FROM versions WHERE user_id = OLD.user_id), 0),
        MAX(CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER),
            COALESCE((SELECT updated_at FROM photos WHERE id = OLD.photo_id), 0)),
        'deleted', OLD.stored_key, OLD.stored_sha256, OLD.stored_size, OLD.declared_sha256,
        OLD.declared_size, OLD.state);
END;

CREATE TRIGGER icloud.albums_history_insert AFTER INSERT ON albums BEGIN
    INSERT INTO album_history (user_id, album_id, library_id, version, changed_at, snapshot)
    VALUES (NEW.user_id, NEW.id, NEW.library_id, NEW.version, NEW.updated_at,
        json_object('title', NEW.title, 'kind', NEW.kind, 'parent_key', NEW.parent_key,
            'sort_index', NEW.sort_index, 'content_sha256', NEW.content_sha256, 'deleted_at', NEW.deleted_at));
END;

CREATE TRIGGER icloud.albums_history_update AFTER UPDATE ON albums
WHEN OLD.version IS NOT NEW.version OR OLD.deleted_at IS NOT NEW.deleted_at
    OR OLD.content_sha256 IS NOT NEW.content_sha256
BEGIN
    INSERT INTO album_history (user_id, album_id, library_id, version, changed_at, snapshot)
    VALUES (NEW.user_id, NEW.id, NEW.library_id, NEW.version, NEW.updated_at,
        json_object('title', NEW.title, 'kind', NEW.kind, 'parent_key', NEW.parent_key,
            'sort_index', NEW.sort_index, 'content_sha256', NEW.content_sha256, 'deleted_at', NEW.deleted_at));
END;

-- Membership is replaced after the album row is written, so the album's `updated_at` is the change's time.
CREATE TRIGGER icloud.album_members_history_insert AFTER INSERT ON album_members BEGIN
    INSERT INTO album_member_history (user_id, album_id, photo_id, position, version, changed_at, change)
    VALUES (NEW.user_id, NEW.album_id, NEW.photo_id, NEW.position,
        COALESCE((SELECT version FROM versions WHERE user_id = NEW.user_id), 0),
        COALESCE((SELECT updated_at FROM albums WHERE id = NEW.album_id), 0), 'added');
END;

CREATE TRIGGER icloud.album_members_history_delete AFTER DELETE ON album_members BEGIN
    INSERT INTO album_member_history (user_id, album_id, photo_id, position, version, changed_at, change)
    VALUES (OLD.user_id, OLD.album_id, OLD.photo_id, OLD.position,
        COALESCE((SELECT version FROM versions WHERE user_id = OLD.user_id), 0),
        COALESCE((SELECT updated_at FROM albums WHERE id = OLD.album_id), 0), 'removed');
END;

-- What existed before this migration starts its history now, as it is.
INSERT INTO icloud.photo_history (user_id, photo_id, library_id, version, changed_at, change, snapshot)
SELECT user_id, id, library_id, version, updated_at,
    CASE WHEN deleted_at IS NULL THEN 'created' ELSE 'deleted' END,
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
        'people', json(people), 'metadata_sha256', metadata_sha256, 'deleted_at', deleted_at)
FROM icloud.photos;
INSERT INTO icloud.album_history (user_id, album_id, library_id, version, changed_at, snapshot)
SELECT user_id, id, library_id, version, updated_at,
    json_object('title', title, 'kind', kind, 'parent_key', parent_key,
        'sort_index', sort_index, 'content_sha256', content_sha256, 'deleted_at', deleted_at)
FROM icloud.albums;
INSERT INTO icloud.album_member_history (user_id, album_id, photo_id, position, version, changed_at, change)
SELECT m.user_id, m.album_id, m.photo_id, m.position, a.version, a.updated_at, 'added'
FROM icloud.album_members m JOIN icloud.albums a ON a.id = m.album_id;
