-- What a photo says, where it was taken, and what its owner's captions mean: the search channels beside the
-- image vector. Each is keyed by photo (or caption) and records what produced it, so a new OCR engine, new
-- place data or a new text tower redoes exactly the rows it would change.

-- Text read in the photo (photod.ingest.ocr). `text` is '' when the photo holds none; `error` says why a
-- photo has no text when reading it failed. Both count as read: only another `engine` reads the photo again.
CREATE TABLE photo_text (
    photo_id    INTEGER PRIMARY KEY REFERENCES photos(id),
    engine      TEXT NOT NULL,
    text        TEXT NOT NULL,
    lines_json  TEXT NOT NULL DEFAULT '[]',   -- [[text, score, x0, y0, x1, y1], ...] in the OCR copy's pixels
    error       TEXT,
    created_at  REAL NOT NULL
);
CREATE INDEX photo_text_engine ON photo_text (engine);

-- Searchable as names and captions are, with CJK characters spaced apart; rowid = photo id.
CREATE VIRTUAL TABLE photo_text_fts USING fts5 (search_text, tokenize = 'unicode61 remove_diacritics 2');

CREATE TRIGGER photo_text_fts_insert AFTER INSERT ON photo_text WHEN new.text != '' BEGIN
    INSERT INTO photo_text_fts (rowid, search_text) VALUES (new.photo_id, photod_search_text(new.text));
END;

CREATE TRIGGER photo_text_fts_update AFTER UPDATE OF text ON photo_text BEGIN
    DELETE FROM photo_text_fts WHERE rowid = old.photo_id;
    INSERT INTO photo_text_fts (rowid, search_text)
        SELECT new.photo_id, photod_search_text(new.text) WHERE new.text != '';
END;

CREATE TRIGGER photo_text_fts_delete AFTER DELETE ON photo_text BEGIN
    DELETE FROM photo_text_fts WHERE rowid = old.photo_id;
END;

-- Where a photo was taken (photod.ingest.places), from the GPS it had when looked up: a photo whose GPS
-- changed, or place data of another `version`, is looked up again. A photo with GPS but in no known area
-- (at sea) has a row with no names, so it is not looked up at every start.
CREATE TABLE photo_places (
    photo_id      INTEGER PRIMARY KEY REFERENCES photos(id),
    version       TEXT NOT NULL,
    gps_lat       REAL NOT NULL,
    gps_lon       REAL NOT NULL,
    country_code  TEXT,
    label_zh      TEXT,     -- as shown: 海南 三亚 天涯区
    label_en      TEXT,     -- Tianya, Sanya, Hainan, China
    names         TEXT NOT NULL DEFAULT '',   -- every name, Chinese and English, one a line: what is searched
    created_at    REAL NOT NULL
);

CREATE VIRTUAL TABLE photo_places_fts USING fts5 (search_text, tokenize = 'unicode61 remove_diacritics 2');

CREATE TRIGGER photo_places_fts_insert AFTER INSERT ON photo_places WHEN new.names != '' BEGIN
    INSERT INTO photo_places_fts (rowid, search_text) VALUES (new.photo_id, photod_search_text(new.names));
END;

CREATE TRIGGER photo_places_fts_update AFTER UPDATE OF names ON photo_places BEGIN
    DELETE FROM photo_places_fts WHERE rowid = old.photo_id;
    INSERT INTO photo_places_fts (rowid, search_text)
        SELECT new.photo_id, photod_search_text(new.names) WHERE new.names != '';
END;

CREATE TRIGGER photo_places_fts_delete AFTER DELETE ON photo_places BEGIN
    DELETE FROM photo_places_fts WHERE rowid = old.photo_id;
END;

-- The text tower's embedding of each caption, so a query finds captions by meaning (小白 -> 我家的白猫).
-- `model_id` is the bundle's text tower id. An edited caption loses its vectors, a removed one too.
CREATE TABLE caption_vectors (
    caption_id  INTEGER NOT NULL REFERENCES captions(id),
    model_id    TEXT NOT NULL,
    dim         INTEGER NOT NULL,
    vector      BLOB NOT NULL,            -- float16, L2-normalised
    PRIMARY KEY (caption_id, model_id)
) WITHOUT ROWID;

CREATE TRIGGER caption_vectors_on_edit AFTER UPDATE OF text ON captions BEGIN
    DELETE FROM caption_vectors WHERE caption_id = old.id;
END;

CREATE TRIGGER caption_vectors_on_delete AFTER DELETE ON captions BEGIN
    DELETE FROM caption_vectors WHERE caption_id = old.id;
END;

-- A photo row removed for good (purged, or an empty row dropped when matched to a moved photo) takes its
-- text and place with it.
CREATE TRIGGER photo_signals_on_delete AFTER DELETE ON photos BEGIN
    DELETE FROM photo_text WHERE photo_id = OLD.id;
    DELETE FROM photo_places WHERE photo_id = OLD.id;
END;
