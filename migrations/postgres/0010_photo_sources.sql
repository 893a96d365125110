-- One iCloud library synced from two Macs is one set of photos (issue 13, item 9): as
-- migrations/sqlite/0010 (read its header for what each change is for).
CREATE TABLE icloud.photo_aliases (
    library_id        TEXT NOT NULL,
    local_identifier  TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    photo_id          TEXT NOT NULL REFERENCES icloud.photos (id) ON DELETE CASCADE,
    created_at        BIGINT NOT NULL,
    deleted_at        BIGINT,
    PRIMARY KEY (library_id, local_identifier),
    FOREIGN KEY (library_id, user_id) REFERENCES icloud.libraries (id, user_id)
);
CREATE INDEX photo_aliases_by_photo ON icloud.photo_aliases (photo_id, library_id);

ALTER TABLE icloud.resources ADD COLUMN library_id TEXT;
UPDATE icloud.resources r SET library_id = p.library_id FROM icloud.photos p WHERE p.id = r.photo_id;

ALTER TABLE icloud.albums ADD COLUMN cloud_guid TEXT;
CREATE INDEX albums_by_cloud_guid ON icloud.albums (user_id, cloud_guid);
