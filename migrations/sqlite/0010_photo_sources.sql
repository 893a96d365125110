-- One iCloud library synced from two Macs is one set of photos (issue 13, item 9). A photo belongs to the
-- user; each Mac's library is a source of it. The photo row keeps its home identity, the (library,
-- localIdentifier) that created it (UNIQUE as before, so a one-Mac catalog reads and writes exactly as it
-- did); every other source's identity is a row here. A sync item is resolved by its identity (the home, then
-- this table), else matched by cloud GUID, then by Apple's fingerprint among photos without a GUID, else it
-- is a new photo. `deleted_at` marks a source that deleted the photo: the photo itself is a tombstone only
-- once every source deleted it (its home moves to a live source first: `catalog/sql/sources.rs`).
CREATE TABLE icloud.photo_aliases (
    library_id        TEXT NOT NULL REFERENCES libraries (id),
    local_identifier  TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    photo_id          TEXT NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    created_at        INTEGER NOT NULL,
    deleted_at        INTEGER,
    PRIMARY KEY (library_id, local_identifier)
);
-- A photo's identities; with the library too, so "this photo's identifier in that library" (the pending list)
-- is one index probe, which SQLite otherwise plans as a walk of the library's aliases.
CREATE INDEX icloud.photo_aliases_by_photo ON photo_aliases (photo_id, library_id);

-- The library whose declaration a resource row holds: only that library is asked to upload it, and its
-- bundle path lies under that library's prefix. NULL (rows from before) reads as the photo's home library.
ALTER TABLE icloud.resources ADD COLUMN library_id TEXT;
UPDATE icloud.resources SET library_id = (SELECT p.library_id FROM photos p WHERE p.id = resources.photo_id);

-- An album's iCloud GUID (`ZGENERICALBUM.ZCLOUDGUID`): the same album synced from two Macs is listed once.
ALTER TABLE icloud.albums ADD COLUMN cloud_guid TEXT;
CREATE INDEX icloud.albums_by_cloud_guid ON albums (user_id, cloud_guid);
