-- Looking a batch's resources up by (user, photo): without it SQLite answered
-- `user_id = ? AND photo_id IN (…)` from resources_by_upload (user_id only), scanning every resource of the
-- user for each sync batch, so re-syncing a large library slowed down as the library grew.
CREATE INDEX icloud.resources_by_user_photo ON resources (user_id, photo_id);
