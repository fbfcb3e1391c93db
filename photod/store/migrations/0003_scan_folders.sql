-- What each folder held the last time a reconcile scan found the catalog agreeing with it, so that the next
-- scan can pass over an unchanged folder without reading its rows. `signature` is a hash of the folder's
-- listing (file names, sizes and mtimes, and the root's include/exclude globs); NULL means "compare this
-- folder file by file". Every folder holding a photo that is not deleted has a row here (the triggers add
-- one), so a folder that vanished from disk is still found and its photos marked deleted.

CREATE TABLE scan_folders (
    root_id    INTEGER NOT NULL,
    folder     TEXT NOT NULL,         -- as photos.folder: '' at the root
    signature  BLOB,
    photos     INTEGER NOT NULL DEFAULT 0,  -- photo files the signature vouches for (counted by the scan)
    PRIMARY KEY (root_id, folder)
) WITHOUT ROWID;

CREATE INDEX photos_folder ON photos (root_id, folder);

INSERT INTO scan_folders (root_id, folder)
    SELECT DISTINCT root_id, folder FROM photos WHERE state != 'deleted';

-- Any change to which files a folder holds, their sizes or mtimes, or whether they are deleted, forgets the
-- folder's signature, whoever makes it (the scan, the watcher, a move, a purge): a signature can only ever
-- vouch for a catalog that has not changed since it was written. Going offline and back is not such a
-- change (the rows return as they were, and a scan never trusts a signature while its root has offline
-- photos), so a drive plugged back in is scanned at the speed of an unchanged one. `signature IS NOT NULL`
-- keeps a bulk change to one write per folder, not one per photo.
CREATE TRIGGER scan_folders_on_insert AFTER INSERT ON photos
BEGIN
    UPDATE scan_folders SET signature = NULL
        WHERE root_id = NEW.root_id AND folder = NEW.folder AND signature IS NOT NULL;
    INSERT INTO scan_folders (root_id, folder)
        SELECT NEW.root_id, NEW.folder
        WHERE NOT EXISTS (SELECT 1 FROM scan_folders WHERE root_id = NEW.root_id AND folder = NEW.folder);
END;

CREATE TRIGGER scan_folders_on_update AFTER UPDATE OF root_id, rel_path, folder, size, mtime_ns, state ON photos
WHEN OLD.root_id IS NOT NEW.root_id OR OLD.folder IS NOT NEW.folder OR OLD.rel_path IS NOT NEW.rel_path
    OR OLD.size IS NOT NEW.size OR OLD.mtime_ns IS NOT NEW.mtime_ns
    OR (OLD.state IS NOT NEW.state AND (OLD.state = 'deleted' OR NEW.state = 'deleted'))
BEGIN
    UPDATE scan_folders SET signature = NULL
        WHERE root_id = OLD.root_id AND folder = OLD.folder AND signature IS NOT NULL;
END;

-- A photo arriving in a folder (moved there, or back from deleted) gives the folder a row if it has none.
CREATE TRIGGER scan_folders_on_arrival AFTER UPDATE OF root_id, folder, state ON photos
WHEN OLD.root_id IS NOT NEW.root_id OR OLD.folder IS NOT NEW.folder
    OR (OLD.state = 'deleted' AND NEW.state != 'deleted')
BEGIN
    UPDATE scan_folders SET signature = NULL
        WHERE root_id = NEW.root_id AND folder = NEW.folder AND signature IS NOT NULL;
    INSERT INTO scan_folders (root_id, folder)
        SELECT NEW.root_id, NEW.folder
        WHERE NOT EXISTS (SELECT 1 FROM scan_folders WHERE root_id = NEW.root_id AND folder = NEW.folder);
END;

CREATE TRIGGER scan_folders_on_delete AFTER DELETE ON photos
BEGIN
    UPDATE scan_folders SET signature = NULL
        WHERE root_id = OLD.root_id AND folder = OLD.folder AND signature IS NOT NULL;
END;
