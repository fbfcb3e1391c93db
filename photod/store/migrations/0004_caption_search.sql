-- Captions become searchable by their words, as file and folder names are: 小白 finds the photo captioned
-- 小白在沙发上睡觉. The text goes in with CJK characters spaced apart (photod.store.textsearch.search_text,
-- which the catalog registers on its connections as photod_search_text), keyed by caption id. Triggers keep
-- it in step, so no write path can forget it: captions added, edited, removed or purged with their photo.
-- (A caption written by a plain sqlite3 shell fails on the unknown function instead of going unindexed.)
CREATE VIRTUAL TABLE captions_fts USING fts5 (search_text, tokenize = 'unicode61 remove_diacritics 2');

INSERT INTO captions_fts (rowid, search_text) SELECT id, photod_search_text(text) FROM captions;

CREATE TRIGGER captions_fts_insert AFTER INSERT ON captions BEGIN
    INSERT INTO captions_fts (rowid, search_text) VALUES (new.id, photod_search_text(new.text));
END;

CREATE TRIGGER captions_fts_update AFTER UPDATE OF text ON captions BEGIN
    DELETE FROM captions_fts WHERE rowid = old.id;
    INSERT INTO captions_fts (rowid, search_text) VALUES (new.id, photod_search_text(new.text));
END;

CREATE TRIGGER captions_fts_delete AFTER DELETE ON captions BEGIN
    DELETE FROM captions_fts WHERE rowid = old.id;
END;
