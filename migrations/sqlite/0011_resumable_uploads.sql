-- Resumable uploads (issue 16, draft-ietf-httpbis-resumable-upload): one row per upload resource, so any
-- replica can answer and continue an upload another one started. `progress` is the store's own record of the
-- bytes kept (storage::ResumableProgress as JSON: the multipart upload, its parts' ETags, the tail object, the
-- SHA-256 state); `upload_offset` is the offset acknowledged to the client, always the one in `progress`.
-- An append holds the row (`holder`, `held_until`, renewed as parts land), so two appends to one upload never
-- interleave; a holder that dies lets it lapse. `answer` is the final answer once complete (kept, like the
-- row, until the upload's max-age passes, so a client that lost it can ask again). Rows idle past max-age
-- are aborted by the collector, which orders them by `updated_at`.
CREATE TABLE icloud.resumable_uploads (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL,
    library_id       TEXT NOT NULL,
    photo_id         TEXT NOT NULL,
    local_identifier TEXT NOT NULL,
    resource         TEXT NOT NULL,
    target_key       TEXT NOT NULL,
    staging_key      TEXT NOT NULL,
    expected_sha256  TEXT,
    upload_length    INTEGER,
    upload_offset    INTEGER NOT NULL,
    progress         TEXT NOT NULL,
    answer           TEXT,
    holder           TEXT,
    held_until       INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX icloud.resumable_uploads_idle ON resumable_uploads (updated_at);
