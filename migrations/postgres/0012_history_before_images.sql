-- Photo history as before-images: as migrations/sqlite/0012 (read its header for the format and how the
-- states of a photo are derived). Inserting a photo writes no history row; each change writes the OLD row.
-- Rows written before this migration are converted in place (ids kept): each takes the snapshot, library and
-- version of the row before it for its photo, and a photo's first row becomes a marker (NULL snapshot).

DROP TRIGGER photos_history_insert ON icloud.photos;
DROP FUNCTION icloud.photos_history_insert();

ALTER TABLE icloud.photo_history ADD COLUMN before_version BIGINT;
ALTER TABLE icloud.photo_history ALTER COLUMN snapshot DROP NOT NULL;
UPDATE icloud.photo_history h
SET library_id = COALESCE(b.before_library, h.library_id), before_version = b.before_version,
    snapshot = b.before_snapshot
FROM (
    SELECT id,
        LAG(library_id) OVER w AS before_library,
        LAG(version) OVER w AS before_version,
        LAG(snapshot) OVER w AS before_snapshot
    FROM icloud.photo_history
    WINDOW w AS (PARTITION BY user_id, photo_id ORDER BY version, id)
) b
WHERE b.id = h.id;

-- The current state's snapshot, the same document the trigger below builds (keep them in step).
CREATE VIEW icloud.photo_snapshots AS
SELECT p.id, p.user_id, p.library_id, p.version, p.created_at, icloud.photo_snapshot(p) AS snapshot
FROM icloud.photos p;

-- A row per new version (metadata, resources, enrichment) and per delete or undelete, holding the OLD row
-- (built inline, as 0008 explains); a version moved without a new `updated_at` (an upload, a job) is stamped
-- with the database clock.
CREATE OR REPLACE FUNCTION icloud.photos_history_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO icloud.photo_history (user_id, photo_id, library_id, version, changed_at, change,
        before_version, snapshot)
    SELECT n.user_id, n.id, o.library_id, n.version,
        CASE WHEN n.updated_at = o.updated_at
            THEN GREATEST((extract(epoch FROM clock_timestamp()) * 1000)::BIGINT, n.updated_at)
            ELSE n.updated_at END,
        CASE WHEN n.deleted_at IS NOT NULL AND o.deleted_at IS NULL THEN 'deleted' ELSE 'updated' END,
        o.version,
        json_build_object('local_identifier', o.local_identifier, 'cloud_guid', o.cloud_guid,
            'fingerprint', o.fingerprint, 'kind', o.kind, 'subtype', o.subtype, 'live_photo', o.live_photo,
            'width', o.width, 'height', o.height, 'duration_ms', o.duration_ms, 'taken_at', o.taken_at,
            'taken_at_offset_s', o.taken_at_offset_s, 'time_zone', o.time_zone, 'modified_at', o.modified_at,
            'favorite', o.favorite, 'hidden', o.hidden, 'trashed', o.trashed, 'latitude', o.latitude,
            'longitude', o.longitude, 'original_filename', o.original_filename, 'uti', o.uti,
            'edited', o.edited, 'title', o.title, 'caption', o.caption, 'keywords', o.keywords::json,
            'people', o.people::json, 'metadata_sha256', o.metadata_sha256, 'deleted_at', o.deleted_at)::text
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE o.version IS DISTINCT FROM n.version OR o.deleted_at IS DISTINCT FROM n.deleted_at
        OR o.metadata_sha256 IS DISTINCT FROM n.metadata_sha256;
    RETURN NULL;
END $$;

-- A resource written with its photo's first row still gets no `created` row: that photo is the one at the
-- user's current version, written once (`created_at` = `updated_at`), with no history row at that version.
-- The first two tests do not depend on the order in which the batch statement's triggers fire: a photo
-- whose version a `touched` CTE moved has an older `created_at` even when its history row is not written yet.
CREATE OR REPLACE FUNCTION icloud.resources_history_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO icloud.resource_history (user_id, photo_id, resource_type, version, changed_at, change)
    SELECT n.user_id, n.photo_id, n.resource_type, COALESCE(v.version, 0),
        GREATEST((extract(epoch FROM clock_timestamp()) * 1000)::BIGINT, COALESCE(p.updated_at, 0)), 'created'
    FROM new_rows n
    LEFT JOIN icloud.versions v ON v.user_id = n.user_id
    LEFT JOIN icloud.photos p ON p.id = n.photo_id
    WHERE p.version IS DISTINCT FROM v.version OR p.created_at IS DISTINCT FROM p.updated_at
        OR EXISTS (SELECT 1 FROM icloud.photo_history h
        WHERE h.user_id = n.user_id AND h.photo_id = n.photo_id AND h.version = p.version);
    RETURN NULL;
END $$;
