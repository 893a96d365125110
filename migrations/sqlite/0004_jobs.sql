-- Enrichment jobs: one per photo and kind, queued when the photo's original is stored. A job is offered when
-- `available_at` has passed: for a queued job that is when it was queued, for a leased one when its lease
-- ends, so an expired lease is offered again by the same index range. `sha256` is the original the job was
-- queued for: a new original re-queues the job, the same one does not.
CREATE TABLE icloud.jobs (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL,
    photo_id          TEXT NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    kind              TEXT NOT NULL CHECK (kind IN ('thumbnail', 'classify', 'face')),
    sha256            TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('queued', 'leased', 'done', 'parked')),
    -- Leases handed out so far.
    attempts          INTEGER NOT NULL,
    -- Failures reported by workers; at the server's limit the job is parked with `last_error`.
    failures          INTEGER NOT NULL,
    last_error        TEXT,
    available_at      INTEGER NOT NULL,
    lease_expires_at  INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (photo_id, kind)
);
CREATE INDEX icloud.jobs_ready ON jobs (user_id, kind, available_at) WHERE state IN ('queued', 'leased');
