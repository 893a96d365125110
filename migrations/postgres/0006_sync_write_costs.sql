-- What a sync batch's rows cost to write, measured on the ingest benchmark: every photo row paid for two
-- foreign-key checks (users, libraries) and every resource row for two (photos, users), each a lookup
-- and a row lock, about a third of the batch's statement.
--
-- A photo's user and library are one fact: one foreign key on the pair checks both (and says more than
-- the two did: the photo's user is its library's user). A resource's user is its photo's, which the
-- catalog code writes and every query filters by, as on SQLite (where no user_id under `icloud` can have
-- a foreign key). Users are never deleted while they own libraries (libraries keep theirs).
ALTER TABLE icloud.libraries ADD CONSTRAINT libraries_id_user_id_key UNIQUE (id, user_id);
ALTER TABLE icloud.photos DROP CONSTRAINT photos_user_id_fkey;
ALTER TABLE icloud.photos DROP CONSTRAINT photos_library_id_fkey;
ALTER TABLE icloud.photos ADD CONSTRAINT photos_library_user_fkey
    FOREIGN KEY (library_id, user_id) REFERENCES icloud.libraries (id, user_id);
ALTER TABLE icloud.resources DROP CONSTRAINT resources_user_id_fkey;

-- As migrations/sqlite/0006: lookups by identifier alone go through the user's libraries.
DROP INDEX icloud.photos_by_local_identifier;

-- As migrations/sqlite/0006: no query reads resources by (user, upload time).
DROP INDEX icloud.resources_by_upload;
-- 0002 added (user_id, photo_id) for SQLite's planner; PostgreSQL looks a batch's resources up by the
-- primary key (photo_id, resource_type) and filters the user, so here the index only cost writes.
DROP INDEX icloud.resources_by_user_photo;
