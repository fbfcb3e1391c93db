-- Every format a person keeps: names in any encoding, RAW files, videos and their sampled frames, and the
-- files that belong together (a RAW and its JPEG, a Live Photo's still and motion, an original and its edit).

-- The exact bytes of rel_path when it is not valid UTF-8 (rel_path is then the \xNN-escaped key; see
-- photod/store/names.py). NULL for every other file.
ALTER TABLE photos ADD COLUMN rel_bytes BLOB;

-- What a row is: 'photo' (any still, RAW included), 'video', or 'frame' (a moment of a video, sampled when
-- the video was staged: it has no file of its own; parent_id is the video, frame_time its time in seconds).
-- A frame's rel_path is '/frames/<video id>/<milliseconds>': no file on disk can have it (a real rel_path
-- never starts with '/'), so the scanner never compares, deletes or moves it.
ALTER TABLE photos ADD COLUMN kind TEXT NOT NULL DEFAULT 'photo' CHECK (kind IN ('photo', 'video', 'frame'));
ALTER TABLE photos ADD COLUMN parent_id INTEGER REFERENCES photos(id);
ALTER TABLE photos ADD COLUMN frame_time REAL;
ALTER TABLE photos ADD COLUMN duration REAL;          -- a video's length in seconds
CREATE INDEX photos_parent ON photos (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX photos_kind ON photos (kind) WHERE kind != 'photo';

-- Files that are one picture or belong to one (same folder, same base name, or an edit's name). photo_id is
-- the file that is shown and searched, other_id the one attached to it:
--   raw:    the JPEG/HEIC rendered from a RAW (photo_id) and the RAW (other_id)
--   motion: a Live Photo's still (photo_id) and its MOV (other_id)
--   edited: an original (photo_id) and its edited copy (other_id, IMG_E4120.JPG); both are searched
-- While photo_id's file is not deleted, a raw or motion other_id is not shown on its own in results.
-- Rebuilt for a folder when its files are staged (photod/ingest/groups.py); nothing else writes these rows.
CREATE TABLE photo_links (
    photo_id  INTEGER NOT NULL REFERENCES photos(id),
    other_id  INTEGER NOT NULL REFERENCES photos(id),
    kind      TEXT NOT NULL CHECK (kind IN ('raw', 'motion', 'edited')),
    PRIMARY KEY (photo_id, other_id, kind)
) WITHOUT ROWID;
CREATE INDEX photo_links_other ON photo_links (other_id);

-- A video's frames follow it to deleted and back (photos.prev_state keeps what they were), so search and the
-- grace period treat them as the video is treated, whoever deletes it. Offline needs no trigger: frames
-- have their video's root, and a root goes offline and comes back as a whole.
CREATE TRIGGER frames_leave_with_video AFTER UPDATE OF state ON photos
WHEN NEW.kind = 'video' AND NEW.state = 'deleted' AND OLD.state != 'deleted'
BEGIN
    UPDATE photos SET
        prev_state = CASE WHEN state = 'offline' THEN prev_state ELSE state END,
        state = 'deleted', deleted_at = NEW.deleted_at, updated_at = NEW.updated_at
        WHERE parent_id = NEW.id AND kind = 'frame' AND state != 'deleted';
END;

CREATE TRIGGER frames_return_with_video AFTER UPDATE OF state ON photos
WHEN NEW.kind = 'video' AND OLD.state = 'deleted' AND NEW.state != 'deleted'
BEGIN
    UPDATE photos SET state = CASE WHEN NEW.state = 'offline' THEN 'offline' ELSE COALESCE(prev_state, 'staged') END,
        prev_state = CASE WHEN NEW.state = 'offline' THEN prev_state ELSE NULL END, deleted_at = NULL,
        updated_at = NEW.updated_at
        WHERE parent_id = NEW.id AND kind = 'frame' AND state = 'deleted';
END;

-- Frames are not files: their folder ('/frames/<video id>') is no folder a scan lists, so it must not get a
-- scan_folders row (a scan would take it for a folder that vanished and delete the frames). The two
-- triggers of 0003 that add folders are made again, the same but for frames.
DROP TRIGGER scan_folders_on_insert;
CREATE TRIGGER scan_folders_on_insert AFTER INSERT ON photos WHEN NEW.kind != 'frame'
BEGIN
    UPDATE scan_folders SET signature = NULL
        WHERE root_id = NEW.root_id AND folder = NEW.folder AND signature IS NOT NULL;
    INSERT INTO scan_folders (root_id, folder)
        SELECT NEW.root_id, NEW.folder
        WHERE NOT EXISTS (SELECT 1 FROM scan_folders WHERE root_id = NEW.root_id AND folder = NEW.folder);
END;

DROP TRIGGER scan_folders_on_arrival;
CREATE TRIGGER scan_folders_on_arrival AFTER UPDATE OF root_id, folder, state ON photos
WHEN NEW.kind != 'frame' AND (OLD.root_id IS NOT NEW.root_id OR OLD.folder IS NOT NEW.folder
    OR (OLD.state = 'deleted' AND NEW.state != 'deleted'))
BEGIN
    UPDATE scan_folders SET signature = NULL
        WHERE root_id = NEW.root_id AND folder = NEW.folder AND signature IS NOT NULL;
    INSERT INTO scan_folders (root_id, folder)
        SELECT NEW.root_id, NEW.folder
        WHERE NOT EXISTS (SELECT 1 FROM scan_folders WHERE root_id = NEW.root_id AND folder = NEW.folder);
END;
