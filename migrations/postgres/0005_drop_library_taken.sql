-- As migrations/sqlite/0005: no query reads photos by (library, taken_at), and each date-ordered index costs
-- a sync batch a scattered write per photo.
DROP INDEX icloud.photos_by_library_taken;
