-- The web timeline (`GET /my/photos/`): newest first, ties by id, keyset-paged. The default view leaves out
-- soft-deleted, hidden and trashed photos; with these partial indexes a page is an index range read of `limit`
-- entries whatever the library size, instead of walking past hidden or trashed rows. The WHERE clauses are
-- written exactly as the list query writes them (`hidden = FALSE`), which is what SQLite needs to use a
-- partial index. `photos_by_user_taken` (0001) serves includeHidden/includeTrashed.
CREATE INDEX icloud.photos_timeline ON photos (user_id, taken_at DESC, id DESC)
    WHERE deleted_at IS NULL AND hidden = FALSE AND trashed = FALSE;
CREATE INDEX icloud.photos_timeline_by_kind ON photos (user_id, kind, taken_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX icloud.photos_timeline_favorites ON photos (user_id, taken_at DESC, id DESC)
    WHERE deleted_at IS NULL AND favorite = TRUE;
