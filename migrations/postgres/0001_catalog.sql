-- The catalog on PostgreSQL: users and API tokens in `public`, the photo catalog in schema `icloud`, so the
-- same qualified names (`icloud.photos`) work here and on SQLite (where `icloud` is an attached file). Times
-- are BIGINT epoch milliseconds, ids are TEXT (128 random bits in hex). Foreign keys to `users` exist here;
-- SQLite cannot have them across its two files, so the catalog code never relies on them.

CREATE SCHEMA IF NOT EXISTS icloud;

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    scope         TEXT NOT NULL CHECK (scope IN ('client', 'web', 'worker', 'admin')),
    -- Lower-case hex SHA-256 of the plaintext; the plaintext is shown once and never stored.
    token_sha256  TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id, created_at);

-- The per-user catalog version: bumped once per write transaction that changes anything.
CREATE TABLE icloud.versions (
    user_id  TEXT PRIMARY KEY REFERENCES users (id),
    version  BIGINT NOT NULL
);

CREATE TABLE icloud.libraries (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    -- The agent's stable id for one Mac library.
    library_key  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (user_id, library_key)
);

CREATE TABLE icloud.photos (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL REFERENCES users (id),
    library_id         TEXT NOT NULL REFERENCES icloud.libraries (id),
    local_identifier   TEXT NOT NULL,
    cloud_guid         TEXT,
    fingerprint        TEXT,
    kind               TEXT NOT NULL CHECK (kind IN ('photo', 'video')),
    subtype            TEXT,
    live_photo         BOOLEAN NOT NULL,
    width              BIGINT NOT NULL,
    height             BIGINT NOT NULL,
    duration_ms        BIGINT,
    taken_at           BIGINT NOT NULL,
    taken_at_offset_s  BIGINT NOT NULL,
    time_zone          TEXT,
    modified_at        BIGINT NOT NULL,
    favorite           BOOLEAN NOT NULL,
    hidden             BOOLEAN NOT NULL,
    trashed            BOOLEAN NOT NULL,
    latitude           DOUBLE PRECISION,
    longitude          DOUBLE PRECISION,
    original_filename  TEXT NOT NULL,
    uti                TEXT NOT NULL,
    edited             BOOLEAN NOT NULL,
    title              TEXT,
    caption            TEXT,
    keywords           TEXT NOT NULL,
    people             TEXT NOT NULL,
    -- SHA-256 of the normalised metadata (resources included): an equal hash means "unchanged".
    metadata_sha256    TEXT NOT NULL,
    version            BIGINT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    deleted_at         BIGINT,
    UNIQUE (library_id, local_identifier)
);
CREATE INDEX photos_by_user_taken ON icloud.photos (user_id, taken_at DESC, id DESC);
CREATE INDEX photos_by_library_taken ON icloud.photos (library_id, taken_at DESC, id DESC);
CREATE INDEX photos_by_user_version ON icloud.photos (user_id, version);
CREATE INDEX photos_by_cloud_guid ON icloud.photos (user_id, cloud_guid);
CREATE INDEX photos_by_local_identifier ON icloud.photos (user_id, local_identifier);

CREATE TABLE icloud.resources (
    photo_id            TEXT NOT NULL REFERENCES icloud.photos (id) ON DELETE CASCADE,
    resource_type       TEXT NOT NULL CHECK (resource_type IN ('original', 'live_video', 'render', 'raw')),
    user_id             TEXT NOT NULL REFERENCES users (id),
    declared_size       BIGINT NOT NULL,
    declared_sha256     TEXT,
    available           BOOLEAN NOT NULL,
    unavailable_reason  TEXT,
    state               TEXT NOT NULL CHECK (state IN ('pending', 'stored', 'unavailable', 'failed')),
    state_reason        TEXT,
    stored_sha256       TEXT,
    stored_key          TEXT,
    stored_size         BIGINT,
    uploaded_at         BIGINT,
    -- Stored by linking bytes the user already had, so no bytes were transferred (rates leave it out).
    deduplicated        BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (photo_id, resource_type)
);
CREATE INDEX resources_pending ON icloud.resources (user_id, photo_id, resource_type)
    WHERE state IN ('pending', 'failed');
CREATE INDEX resources_by_declared_sha256 ON icloud.resources (user_id, declared_sha256);
CREATE INDEX resources_by_upload ON icloud.resources (user_id, uploaded_at);

-- Content the user already stores, for dedup: one row per distinct SHA-256 per user.
CREATE TABLE icloud.blobs (
    user_id      TEXT NOT NULL REFERENCES users (id),
    sha256       TEXT NOT NULL,
    storage_key  TEXT NOT NULL,
    size         BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (user_id, sha256)
);

CREATE TABLE icloud.albums (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id),
    library_id      TEXT NOT NULL REFERENCES icloud.libraries (id),
    -- The album's id on the Mac.
    album_key       TEXT NOT NULL,
    title           TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('album', 'folder', 'shared')),
    parent_key      TEXT,
    sort_index      BIGINT NOT NULL,
    n_members       BIGINT NOT NULL,
    content_sha256  TEXT NOT NULL,
    version         BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    deleted_at      BIGINT,
    UNIQUE (library_id, album_key)
);
CREATE INDEX albums_by_user ON icloud.albums (user_id, library_id, sort_index);

CREATE TABLE icloud.album_members (
    album_id  TEXT NOT NULL REFERENCES icloud.albums (id) ON DELETE CASCADE,
    photo_id  TEXT NOT NULL REFERENCES icloud.photos (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id),
    position  BIGINT NOT NULL,
    PRIMARY KEY (album_id, photo_id)
);
CREATE INDEX album_members_by_position ON icloud.album_members (album_id, position);
CREATE INDEX album_members_by_photo ON icloud.album_members (photo_id);

-- Results of enrichment workers (thumbnail, classify, face), one JSON document per photo and kind.
CREATE TABLE icloud.enrichments (
    photo_id    TEXT NOT NULL REFERENCES icloud.photos (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id),
    kind        TEXT NOT NULL,
    result      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (photo_id, kind)
);
CREATE INDEX enrichments_by_user ON icloud.enrichments (user_id, kind);
