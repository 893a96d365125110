-- Nothing lost (issue 12): objects are immutable and keyed by where they belong, never by an identifier.
-- A resource remembers its path inside the Mac's Photos bundle (`originals/3/<UUID>.jpeg`): its bytes are
-- stored exactly there, so an agent sync, `seed-originals` and a mount of `originals/` share one object.
ALTER TABLE icloud.resources ADD COLUMN bundle_path TEXT;

-- "Which content is stored at this key": asked before an upload writes a bundle path, so bytes already
-- there (from an earlier upload) are linked or left alone, never written over.
CREATE INDEX icloud.blobs_by_key ON blobs (user_id, storage_key);
