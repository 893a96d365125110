-- The same indexes as migrations/sqlite/0003: the web timeline, newest first, keyset-paged, with the default
-- view's exclusions (deleted, hidden, trashed) in the partial index predicates.
CREATE INDEX photos_timeline ON icloud.photos (user_id, taken_at DESC, id DESC)
    WHERE deleted_at IS NULL AND hidden = FALSE AND trashed = FALSE;
CREATE INDEX photos_timeline_by_kind ON icloud.photos (user_id, kind, taken_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX photos_timeline_favorites ON icloud.photos (user_id, taken_at DESC, id DESC)
    WHERE deleted_at IS NULL AND favorite = TRUE;
