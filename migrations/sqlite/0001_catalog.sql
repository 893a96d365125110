-- The catalog on SQLite. Users and API tokens live in the main database file; everything a sync batch writes
-- lives in the database attached as `icloud` (every pool connection attaches it before this runs), because a
-- transaction over two WAL files is atomic per file only. Foreign keys cannot cross the two files, so the
-- `user_id` columns under `icloud` are checked by the catalog code (every query filters by user), not by SQLite.
-- Times are integer epoch milliseconds, ids are TEXT (128 random bits in hex), booleans are 0/1.

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    scope         TEXT NOT NULL CHECK (scope IN ('client', 'web', 'worker', 'admin')),
    -- Lower-case hex SHA-256 of the plaintext; the plaintext is shown once and never stored.
    token_sha256  TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id, created_at);

-- The per-user catalog version: bumped once per write transaction that changes anything.
CREATE TABLE icloud.versions (
    user_id  TEXT PRIMARY KEY,
    version  INTEGER NOT NULL
);

CREATE TABLE icloud.libraries (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    -- The agent's stable id for one Mac library.
    library_key  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (user_id, library_key)
);

CREATE TABLE icloud.photos (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL,
    library_id         TEXT NOT NULL REFERENCES libraries (id),
    local_identifier   TEXT NOT NULL,
    cloud_guid         TEXT,
    fingerprint        TEXT,
    kind               TEXT NOT NULL CHECK (kind IN ('photo', 'video')),
    subtype            TEXT,
    live_photo         INTEGER NOT NULL,
    width              INTEGER NOT NULL,
    height             INTEGER NOT NULL,
    duration_ms        INTEGER,
    taken_at           INTEGER NOT NULL,
    taken_at_offset_s  INTEGER NOT NULL,
    time_zone          TEXT,
    modified_at        INTEGER NOT NULL,
    favorite           INTEGER NOT NULL,
    hidden             INTEGER NOT NULL,
    trashed            INTEGER NOT NULL,
    latitude           REAL,
    longitude          REAL,
    original_filename  TEXT NOT NULL,
    uti                TEXT NOT NULL,
    edited             INTEGER NOT NULL,
    title              TEXT,
    caption            TEXT,
    keywords           TEXT NOT NULL,
    people             TEXT NOT NULL,
    -- SHA-256 of the normalised metadata (resources included): an equal hash means "unchanged".
    metadata_sha256    TEXT NOT NULL,
    version            INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    deleted_at         INTEGER,
    UNIQUE (library_id, local_identifier)
);
CREATE INDEX icloud.photos_by_user_taken ON photos (user_id, taken_at DESC, id DESC);
CREATE INDEX icloud.photos_by_library_taken ON photos (library_id, taken_at DESC, id DESC);
CREATE INDEX icloud.photos_by_user_version ON photos (user_id, version);
CREATE INDEX icloud.photos_by_cloud_guid ON photos (user_id, cloud_guid);
CREATE INDEX icloud.photos_by_local_identifier ON photos (user_id, local_identifier);

CREATE TABLE icloud.resources (
    photo_id            TEXT NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    resource_type       TEXT NOT NULL CHECK (resource_type IN ('original', 'live_video', 'render', 'raw')),
    user_id             TEXT NOT NULL,
    declared_size       INTEGER NOT NULL,
    declared_sha256     TEXT,
    available           INTEGER NOT NULL,
    unavailable_reason  TEXT,
    state               TEXT NOT NULL CHECK (state IN ('pending', 'stored', 'unavailable', 'failed')),
    state_reason        TEXT,
    stored_sha256       TEXT,
    stored_key          TEXT,
    stored_size         INTEGER,
    uploaded_at         INTEGER,
    -- Stored by linking bytes the user already had, so no bytes were transferred (rates leave it out).
    deduplicated        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (photo_id, resource_type)
);
CREATE INDEX icloud.resources_pending ON resources (user_id, photo_id, resource_type)
    WHERE state IN ('pending', 'failed');
CREATE INDEX icloud.resources_by_declared_sha256 ON resources (user_id, declared_sha256);
CREATE INDEX icloud.resources_by_upload ON resources (user_id, uploaded_at);

-- Content the user already stores, for dedup: one row per distinct SHA-256 per user.
CREATE TABLE icloud.blobs (
    user_id      TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    storage_key  TEXT NOT NULL,
    size         INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (user_id, sha256)
);

CREATE TABLE icloud.albums (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    library_id      TEXT NOT NULL REFERENCES libraries (id),
    -- The album's id on the Mac.
    album_key       TEXT NOT NULL,
    title           TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('album', 'folder', 'shared')),
    parent_key      TEXT,
    sort_index      INTEGER NOT NULL,
    n_members       INTEGER NOT NULL,
    content_sha256  TEXT NOT NULL,
    version         INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    deleted_at      INTEGER,
    UNIQUE (library_id, album_key)
);
CREATE INDEX icloud.albums_by_user ON albums (user_id, library_id, sort_index);

CREATE TABLE icloud.album_members (
    album_id  TEXT NOT NULL REFERENCES albums (id) ON DELETE CASCADE,
    photo_id  TEXT NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL,
    position  INTEGER NOT NULL,
    PRIMARY KEY (album_id, photo_id)
);
CREATE INDEX icloud.album_members_by_position ON album_members (album_id, position);
CREATE INDEX icloud.album_members_by_photo ON album_members (photo_id);

-- Results of enrichment workers (thumbnail, classify, face), one JSON document per photo and kind.
CREATE TABLE icloud.enrichments (
    photo_id    TEXT NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    result      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (photo_id, kind)
);
CREATE INDEX icloud.enrichments_by_user ON enrichments (user_id, kind);
