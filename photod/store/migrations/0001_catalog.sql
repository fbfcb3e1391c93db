-- The catalog: one row per root, one row per photo file, and the captions people write.

CREATE TABLE roots (
    id            INTEGER PRIMARY KEY,
    path          TEXT NOT NULL UNIQUE,
    label         TEXT NOT NULL DEFAULT '',
    source        TEXT NOT NULL DEFAULT 'cli' CHECK (source IN ('config', 'cli')),
    watch         TEXT NOT NULL DEFAULT 'auto' CHECK (watch IN ('auto', 'inotify', 'poll')),
    poll_interval REAL NOT NULL DEFAULT 30,
    include_json  TEXT NOT NULL DEFAULT '[]',
    exclude_json  TEXT NOT NULL DEFAULT '[]',
    online        INTEGER NOT NULL DEFAULT 0,
    device        INTEGER,            -- st_dev last seen while online: a different device means a different drive
    fs_type       TEXT,
    watch_mode    TEXT,               -- what the watcher actually does: inotify or poll
    last_scan_at  REAL,
    added_at      REAL NOT NULL,
    removed_at    REAL               -- `photod roots remove`: kept so its photos' grace period can run
);

CREATE TABLE photos (
    id            INTEGER PRIMARY KEY,
    root_id       INTEGER NOT NULL REFERENCES roots(id),
    rel_path      TEXT NOT NULL,      -- POSIX-style, relative to the root
    filename      TEXT NOT NULL,
    folder        TEXT NOT NULL,      -- rel_path's parent, '' at the root
    size          INTEGER NOT NULL,
    mtime_ns      INTEGER NOT NULL,
    content_hash  TEXT,               -- blake2b of the whole file; matches moved and renamed files
    width         INTEGER,
    height        INTEGER,
    format        TEXT,
    taken_at      TEXT,               -- ISO 8601, camera local time as the camera wrote it
    camera_make   TEXT,
    camera_model  TEXT,
    lens          TEXT,
    orientation   INTEGER,
    gps_lat       REAL,
    gps_lon       REAL,
    state         TEXT NOT NULL DEFAULT 'new'
                  CHECK (state IN ('new', 'staged', 'indexed', 'failed', 'offline', 'deleted')),
    prev_state    TEXT,               -- the state to return to when an offline or deleted photo comes back
    error         TEXT,
    staged_at     REAL,
    indexed_at    REAL,
    deleted_at    REAL,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    UNIQUE (root_id, rel_path)
);

CREATE INDEX photos_state ON photos (state);
CREATE INDEX photos_hash ON photos (content_hash);
CREATE INDEX photos_taken ON photos (taken_at);
CREATE INDEX photos_camera ON photos (camera_model);

-- Filename, folder and path search. Filled by the catalog code with CJK characters spaced apart, so that
-- a two-character query such as 三亚 matches inside 2019三亚婚礼 as a phrase.
CREATE VIRTUAL TABLE photos_fts USING fts5 (search_text, tokenize = 'unicode61 remove_diacritics 2');

CREATE TABLE captions (
    id          INTEGER PRIMARY KEY,
    photo_id    INTEGER NOT NULL REFERENCES photos(id),
    text        TEXT NOT NULL,
    source      TEXT NOT NULL DEFAULT 'user',   -- user, import, folder, feedback
    created_at  REAL NOT NULL
);
CREATE INDEX captions_photo ON captions (photo_id);
