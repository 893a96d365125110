-- The garbage collector's lease (issue 12): one row per job name. A replica runs a pass only while it holds
-- the row (holder = its random id, expires_at in the future); taking it is one conditional upsert, so of
-- replicas racing for a free or expired lease exactly one wins. A holder that dies simply lets it expire.
CREATE TABLE icloud.gc_leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
);
