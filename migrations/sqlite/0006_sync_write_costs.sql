-- Indexes no query reads any more, each written by every sync batch.

-- Upload lookups by identifier alone go through the user's libraries into UNIQUE (library_id,
-- local_identifier), so this index, which every new photo paid for at a random place (identifiers are
-- UUIDs), serves nothing any more.
DROP INDEX icloud.photos_by_local_identifier;

-- No query reads resources by (user, upload time): the stats add every resource of the user up anyway.
DROP INDEX icloud.resources_by_upload;
