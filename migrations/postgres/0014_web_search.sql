-- Web search (issue 14), as migrations/sqlite/0014: `search_text` holds the photo's searchable words, folded
-- by the server (`catalog/search.rs`), one space apart. The index is over `array_to_tsvector` of those
-- words: lexemes taken as they are, with no parser, dictionary, stemming or stop words (which `to_tsvector`,
-- even with the `simple` configuration, would apply and SQLite would not), so a `tsquery` of `'word':*`
-- prefixes matches exactly what the SQLite FTS5 index matches. The expression is written here exactly as
-- the query writes it: that is what lets the planner use the index.
ALTER TABLE icloud.photos ADD COLUMN search_text TEXT;

CREATE INDEX photos_search ON icloud.photos
    USING GIN (array_to_tsvector(string_to_array(search_text, ' ')))
    WHERE deleted_at IS NULL;

-- The rows the start-up fold looks for, without a scan once they are done.
CREATE INDEX photos_unfolded ON icloud.photos (user_id) WHERE search_text IS NULL;

-- The date scrubber counts the default view's photos by the month of their own clock from this index alone
-- (an index-only scan). The offset comes before the time so that the index is no use to the timeline's
-- pages: given (user_id, taken_at, …) the planner read the pages from it with a sort on top instead of from
-- `photos_timeline` (0003) in order.
CREATE INDEX photos_months ON icloud.photos (user_id, taken_at_offset_s, taken_at)
    WHERE deleted_at IS NULL AND hidden = FALSE AND trashed = FALSE;
