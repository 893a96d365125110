-- Web search (issue 14): a photo's searchable text (title, caption, keywords, people, original file name)
-- folded into words by the server (`catalog/search.rs`: lower case, no accents, words of letters and digits,
-- each once, one space apart), and an FTS5 index over them.
--
-- `search_text` is written by every statement that writes those fields, in the same statement; NULL means
-- "not folded yet": rows from before this migration, which the server folds when it starts
-- (`catalog/sql/search.rs`), and rows inserted by bulk SQL outside the server. A NULL row matches no search.
--
-- The FTS5 table holds no copy of the text (external content: `photos.search_text`), and the `ascii`
-- tokenizer splits only on ASCII spaces and punctuation, so its words are exactly the server's: no second
-- notion of a word, of case or of accents that could differ from PostgreSQL's. `detail=none`: search asks
-- only "does this word start some word of the photo", never positions, so none are stored. Prefix indexes of
-- 2 and 3 characters serve short prefixes (what a person types first) without a walk of every word.
-- The FTS rows are keyed by the photo row's rowid, which stays put under the upserts the server runs (an
-- UPDATE, never a delete and insert). A VACUUM may renumber rowids of a table without an INTEGER PRIMARY KEY;
-- the server never runs one, and after one run by hand:
--   INSERT INTO icloud.photo_search (photo_search) VALUES ('rebuild');
ALTER TABLE icloud.photos ADD COLUMN search_text TEXT;

CREATE VIRTUAL TABLE icloud.photo_search USING fts5(
    search_text, content = 'photos', content_rowid = 'rowid', tokenize = 'ascii', detail = 'none',
    prefix = '2 3'
);

CREATE TRIGGER icloud.photos_search_insert AFTER INSERT ON photos WHEN NEW.search_text IS NOT NULL BEGIN
    INSERT INTO photo_search (rowid, search_text) VALUES (NEW.rowid, NEW.search_text);
END;

CREATE TRIGGER icloud.photos_search_update AFTER UPDATE OF search_text ON photos
WHEN OLD.search_text IS NOT NEW.search_text BEGIN
    INSERT INTO photo_search (photo_search, rowid, search_text)
        SELECT 'delete', OLD.rowid, OLD.search_text WHERE OLD.search_text IS NOT NULL;
    INSERT INTO photo_search (rowid, search_text)
        SELECT NEW.rowid, NEW.search_text WHERE NEW.search_text IS NOT NULL;
END;

CREATE TRIGGER icloud.photos_search_delete AFTER DELETE ON photos WHEN OLD.search_text IS NOT NULL BEGIN
    INSERT INTO photo_search (photo_search, rowid, search_text) VALUES ('delete', OLD.rowid, OLD.search_text);
END;

-- The rows the start-up fold looks for, without a scan once they are done.
CREATE INDEX icloud.photos_unfolded ON photos (user_id) WHERE search_text IS NULL;

-- The date scrubber (`GET /my/photos/months`) counts the default view's photos of a user by the month of
-- their own clock, from this index alone (covering: no table row is read). The offset comes before the time
-- so that the index is no use to the timeline's pages (ordered by time): the planner keeps reading those
-- from `photos_timeline` (0003), in order, rather than from this one with a sort. The columns of the
-- predicate are in it as well, constant as they are: SQLite counts an index as covering only when every
-- column the query names is in it, those of a matching partial-index predicate included.
CREATE INDEX icloud.photos_months ON photos
    (user_id, taken_at_offset_s, taken_at, deleted_at, hidden, trashed)
    WHERE deleted_at IS NULL AND hidden = FALSE AND trashed = FALSE;
