-- The same index as migrations/sqlite/0002: a batch's resources by (user, photo).
CREATE INDEX resources_by_user_photo ON icloud.resources (user_id, photo_id);
