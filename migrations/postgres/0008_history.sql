-- History and trash (issue 12): as migrations/sqlite/0008 (read its header for what each table is for), with
-- plpgsql trigger functions. The sync batch writes photos and resources in one statement of data-modifying
-- CTEs; AFTER ROW triggers fire at the end of that statement, so each sees the batch's version bump.

CREATE TABLE icloud.photo_history (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     TEXT NOT NULL,
    photo_id    TEXT NOT NULL,
    library_id  TEXT NOT NULL,
    version     BIGINT NOT NULL,
    changed_at  BIGINT NOT NULL,
    change      TEXT NOT NULL CHECK (change IN ('created', 'updated', 'deleted', 'restored')),
    snapshot    TEXT NOT NULL
);
CREATE INDEX photo_history_by_photo ON icloud.photo_history (user_id, photo_id, version);
CREATE INDEX photo_history_by_time ON icloud.photo_history (user_id, changed_at);

CREATE TABLE icloud.resource_history (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          TEXT NOT NULL,
    photo_id         TEXT NOT NULL,
    resource_type    TEXT NOT NULL,
    version          BIGINT NOT NULL,
    changed_at       BIGINT NOT NULL,
    change           TEXT NOT NULL CHECK (change IN ('created', 'updated', 'deleted')),
    stored_key       TEXT,
    stored_sha256    TEXT,
    stored_size      BIGINT,
    declared_sha256  TEXT,
    declared_size    BIGINT,
    state            TEXT
);
CREATE INDEX resource_history_by_key ON icloud.resource_history (user_id, stored_key);
CREATE INDEX resource_history_by_photo ON icloud.resource_history (user_id, photo_id, changed_at);
CREATE INDEX resource_history_by_time ON icloud.resource_history (changed_at);

CREATE TABLE icloud.album_history (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     TEXT NOT NULL,
    album_id    TEXT NOT NULL,
    library_id  TEXT NOT NULL,
    version     BIGINT NOT NULL,
    changed_at  BIGINT NOT NULL,
    snapshot    TEXT NOT NULL
);
CREATE INDEX album_history_by_album ON icloud.album_history (user_id, album_id, changed_at);

CREATE TABLE icloud.album_member_history (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     TEXT NOT NULL,
    album_id    TEXT NOT NULL,
    photo_id    TEXT NOT NULL,
    position    BIGINT NOT NULL,
    version     BIGINT NOT NULL,
    changed_at  BIGINT NOT NULL,
    change      TEXT NOT NULL CHECK (change IN ('added', 'removed'))
);
CREATE INDEX album_member_history_by_album ON icloud.album_member_history (user_id, album_id, changed_at);
CREATE INDEX album_member_history_by_photo ON icloud.album_member_history (photo_id);

-- The photo's metadata as JSON with the column names, the same document SQLite's json_object builds.
CREATE FUNCTION icloud.photo_snapshot(p icloud.photos) RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
    SELECT json_build_object('local_identifier', p.local_identifier, 'cloud_guid', p.cloud_guid,
        'fingerprint', p.fingerprint, 'kind', p.kind, 'subtype', p.subtype, 'live_photo', p.live_photo,
        'width', p.width, 'height', p.height, 'duration_ms', p.duration_ms, 'taken_at', p.taken_at,
        'taken_at_offset_s', p.taken_at_offset_s, 'time_zone', p.time_zone, 'modified_at', p.modified_at,
        'favorite', p.favorite, 'hidden', p.hidden, 'trashed', p.trashed, 'latitude', p.latitude,
        'longitude', p.longitude, 'original_filename', p.original_filename, 'uti', p.uti,
        'edited', p.edited, 'title', p.title, 'caption', p.caption, 'keywords', p.keywords::json,
        'people', p.people::json, 'metadata_sha256', p.metadata_sha256, 'deleted_at', p.deleted_at)::text
$$;

CREATE FUNCTION icloud.album_snapshot(a icloud.albums) RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
    SELECT json_build_object('title', a.title, 'kind', a.kind, 'parent_key', a.parent_key,
        'sort_index', a.sort_index, 'content_sha256', a.content_sha256, 'deleted_at', a.deleted_at)::text
$$;

-- Photos and resources are written by the sync batch, many rows per statement: their triggers are
-- statement-level over transition tables, one INSERT … SELECT per statement (row-level plpgsql halved the
-- batch's throughput). The snapshot is built inline, the same expression as `photo_snapshot` (which the
-- backfill below uses): calling that function on each transition row cast back to `icloud.photos` cost the
-- sync batch a third of the trigger's time (it is declared IMMUTABLE over a STABLE `json_build_object`, so it
-- is never inlined), and the trigger runs while the batch holds its user's version lock. Keep both in step.
CREATE FUNCTION icloud.photos_history_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO icloud.photo_history (user_id, photo_id, library_id, version, changed_at, change, snapshot)
    SELECT n.user_id, n.id, n.library_id, n.version, n.updated_at,
        CASE WHEN n.deleted_at IS NULL THEN 'created' ELSE 'deleted' END,
        json_build_object('local_identifier', n.local_identifier, 'cloud_guid', n.cloud_guid,
            'fingerprint', n.fingerprint, 'kind', n.kind, 'subtype', n.subtype, 'live_photo', n.live_photo,
            'width', n.width, 'height', n.height, 'duration_ms', n.duration_ms, 'taken_at', n.taken_at,
            'taken_at_offset_s', n.taken_at_offset_s, 'time_zone', n.time_zone, 'modified_at', n.modified_at,
            'favorite', n.favorite, 'hidden', n.hidden, 'trashed', n.trashed, 'latitude', n.latitude,
            'longitude', n.longitude, 'original_filename', n.original_filename, 'uti', n.uti,
            'edited', n.edited, 'title', n.title, 'caption', n.caption, 'keywords', n.keywords::json,
            'people', n.people::json, 'metadata_sha256', n.metadata_sha256, 'deleted_at', n.deleted_at)::text
    FROM new_rows n;
    RETURN NULL;
END $$;
CREATE TRIGGER photos_history_insert AFTER INSERT ON icloud.photos
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION icloud.photos_history_insert();

-- A row per new version (metadata, resources, enrichment) and per delete or undelete; a version moved
-- without a new `updated_at` (an upload, a job) is stamped with the database clock.
CREATE FUNCTION icloud.photos_history_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO icloud.photo_history (user_id, photo_id, library_id, version, changed_at, change, snapshot)
    SELECT n.user_id, n.id, n.library_id, n.version,
        CASE WHEN n.updated_at = o.updated_at
            THEN GREATEST((extract(epoch FROM clock_timestamp()) * 1000)::BIGINT, n.updated_at)
            ELSE n.updated_at END,
        CASE WHEN n.deleted_at IS NOT NULL AND o.deleted_at IS NULL THEN 'deleted' ELSE 'updated' END,
        json_build_object('local_identifier', n.local_identifier, 'cloud_guid', n.cloud_guid,
            'fingerprint', n.fingerprint, 'kind', n.kind, 'subtype', n.subtype, 'live_photo', n.live_photo,
            'width', n.width, 'height', n.height, 'duration_ms', n.duration_ms, 'taken_at', n.taken_at,
            'taken_at_offset_s', n.taken_at_offset_s, 'time_zone', n.time_zone, 'modified_at', n.modified_at,
            'favorite', n.favorite, 'hidden', n.hidden, 'trashed', n.trashed, 'latitude', n.latitude,
            'longitude', n.longitude, 'original_filename', n.original_filename, 'uti', n.uti,
            'edited', n.edited, 'title', n.title, 'caption', n.caption, 'keywords', n.keywords::json,
            'people', n.people::json, 'metadata_sha256', n.metadata_sha256, 'deleted_at', n.deleted_at)::text
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE o.version IS DISTINCT FROM n.version OR o.deleted_at IS DISTINCT FROM n.deleted_at
        OR o.metadata_sha256 IS DISTINCT FROM n.metadata_sha256;
    RETURN NULL;
END $$;
CREATE TRIGGER photos_history_update AFTER UPDATE ON icloud.photos
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION icloud.photos_history_update();

-- The database clock, or the photo's `updated_at` when that is later (see the SQLite migration). As on SQLite,
-- a resource written with its photo's first row gets no `created` row (the photo's own `created` row at that
-- version says it all: a restore to before it makes the photo a tombstone, and the history reads resource rows
-- only at later versions), so a new photo costs one history row, not two. The sync batch's statement inserts
-- photos before resources, so `photos_history_insert` has fired when this one looks.
CREATE FUNCTION icloud.resources_history_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO icloud.resource_history (user_id, photo_id, resource_type, version, changed_at, change)
    SELECT n.user_id, n.photo_id, n.resource_type, COALESCE(v.version, 0),
        GREATEST((extract(epoch FROM clock_timestamp()) * 1000)::BIGINT, COALESCE(p.updated_at, 0)), 'created'
    FROM new_rows n
    LEFT JOIN icloud.versions v ON v.user_id = n.user_id
    LEFT JOIN icloud.photos p ON p.id = n.photo_id
    WHERE NOT EXISTS (SELECT 1 FROM icloud.photo_history h WHERE h.user_id = n.user_id
        AND h.photo_id = n.photo_id AND h.version = v.version AND h.change = 'created');
    RETURN NULL;
END $$;
CREATE TRIGGER resources_history_insert AFTER INSERT ON icloud.resources
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION icloud.resources_history_insert();

CREATE FUNCTION icloud.resources_history_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO icloud.resource_history (user_id, photo_id, resource_type, version, changed_at, change,
        stored_key, stored_sha256, stored_size, declared_sha256, declared_size, state)
    SELECT o.user_id, o.photo_id, o.resource_type, COALESCE(v.version, 0),
        GREATEST((extract(epoch FROM clock_timestamp()) * 1000)::BIGINT, COALESCE(p.updated_at, 0)), 'updated',
        o.stored_key, o.stored_sha256, o.stored_size, o.declared_sha256, o.declared_size, o.state
    FROM old_rows o
    JOIN new_rows n ON n.photo_id = o.photo_id AND n.resource_type = o.resource_type
    LEFT JOIN icloud.versions v ON v.user_id = o.user_id
    LEFT JOIN icloud.photos p ON p.id = o.photo_id
    WHERE o.stored_key IS DISTINCT FROM n.stored_key OR o.stored_sha256 IS DISTINCT FROM n.stored_sha256;
    RETURN NULL;
END $$;
CREATE TRIGGER resources_history_update AFTER UPDATE ON icloud.resources
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION icloud.resources_history_update();

CREATE FUNCTION icloud.resources_history_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO icloud.resource_history (user_id, photo_id, resource_type, version, changed_at, change,
        stored_key, stored_sha256, stored_size, declared_sha256, declared_size, state)
    SELECT o.user_id, o.photo_id, o.resource_type, COALESCE(v.version, 0),
        GREATEST((extract(epoch FROM clock_timestamp()) * 1000)::BIGINT, COALESCE(p.updated_at, 0)), 'deleted',
        o.stored_key, o.stored_sha256, o.stored_size, o.declared_sha256, o.declared_size, o.state
    FROM old_rows o
    LEFT JOIN icloud.versions v ON v.user_id = o.user_id
    LEFT JOIN icloud.photos p ON p.id = o.photo_id;
    RETURN NULL;
END $$;
CREATE TRIGGER resources_history_delete AFTER DELETE ON icloud.resources
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION icloud.resources_history_delete();

CREATE FUNCTION icloud.albums_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.version IS NOT DISTINCT FROM NEW.version AND OLD.deleted_at IS NOT DISTINCT FROM NEW.deleted_at
            AND OLD.content_sha256 IS NOT DISTINCT FROM NEW.content_sha256 THEN
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO icloud.album_history (user_id, album_id, library_id, version, changed_at, snapshot)
    VALUES (NEW.user_id, NEW.id, NEW.library_id, NEW.version, NEW.updated_at, icloud.album_snapshot(NEW));
    RETURN NULL;
END $$;
CREATE TRIGGER albums_history AFTER INSERT OR UPDATE ON icloud.albums
    FOR EACH ROW EXECUTE FUNCTION icloud.albums_history();

-- Membership is replaced after the album row is written, so the album's `updated_at` is the change's time.
CREATE FUNCTION icloud.album_members_history() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    m icloud.album_members;
BEGIN
    IF TG_OP = 'INSERT' THEN m := NEW; ELSE m := OLD; END IF;
    INSERT INTO icloud.album_member_history (user_id, album_id, photo_id, position, version, changed_at, change)
    VALUES (m.user_id, m.album_id, m.photo_id, m.position,
        COALESCE((SELECT version FROM icloud.versions WHERE user_id = m.user_id), 0),
        COALESCE((SELECT updated_at FROM icloud.albums WHERE id = m.album_id), 0),
        CASE WHEN TG_OP = 'INSERT' THEN 'added' ELSE 'removed' END);
    RETURN NULL;
END $$;
CREATE TRIGGER album_members_history AFTER INSERT OR DELETE ON icloud.album_members
    FOR EACH ROW EXECUTE FUNCTION icloud.album_members_history();

-- What existed before this migration starts its history now, as it is.
INSERT INTO icloud.photo_history (user_id, photo_id, library_id, version, changed_at, change, snapshot)
SELECT p.user_id, p.id, p.library_id, p.version, p.updated_at,
    CASE WHEN p.deleted_at IS NULL THEN 'created' ELSE 'deleted' END, icloud.photo_snapshot(p)
FROM icloud.photos p;
INSERT INTO icloud.album_history (user_id, album_id, library_id, version, changed_at, snapshot)
SELECT a.user_id, a.id, a.library_id, a.version, a.updated_at, icloud.album_snapshot(a) FROM icloud.albums a;
INSERT INTO icloud.album_member_history (user_id, album_id, photo_id, position, version, changed_at, change)
SELECT m.user_id, m.album_id, m.photo_id, m.position, a.version, a.updated_at, 'added'
FROM icloud.album_members m JOIN icloud.albums a ON a.id = m.album_id;
