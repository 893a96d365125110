-- No query reads photos by (library, taken_at): the web timeline is per user (photos_timeline and its
-- siblings), the sync looks photos up by (library, local_identifier). Photos reach a sync batch in library
-- order, not by date, so every date-ordered index takes its inserts at scattered leaves; a profile of the
-- ingest showed the write-ahead log filled mostly by those leaves, and this one served nothing.
DROP INDEX icloud.photos_by_library_taken;
