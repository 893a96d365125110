-- Failed web sign-ins (issue 14), counted in the catalog so that every replica sees every failure: behind
-- n replicas an attacker gets the same five tries per name and per address in five minutes as against one
-- server. `key` is `user:<lower-cased name>` or `address:<ip>`; a failure is one row per key. Rows older
-- than the window are deleted whenever a failure is recorded, and a user's are deleted when they sign in.
CREATE TABLE login_failures (
    key  TEXT NOT NULL,
    at   INTEGER NOT NULL
);
CREATE INDEX login_failures_by_key ON login_failures (key, at);
CREATE INDEX login_failures_by_time ON login_failures (at);
