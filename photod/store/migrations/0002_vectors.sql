-- Image embeddings, the durable truth behind the FAISS index (which is only a cache of this table).

CREATE TABLE vectors (
    photo_id    INTEGER NOT NULL REFERENCES photos(id),
    model_id    TEXT NOT NULL,        -- the bundle's content id: vectors of two models never mix
    dim         INTEGER NOT NULL,
    vector      BLOB NOT NULL,        -- float16, L2-normalised
    created_at  REAL NOT NULL,
    PRIMARY KEY (photo_id, model_id)
);
CREATE INDEX vectors_model ON vectors (model_id);

-- Search results a person marked right or wrong for the query that found them: labelled pairs for finetune.
CREATE TABLE feedback (
    id          INTEGER PRIMARY KEY,
    photo_id    INTEGER NOT NULL REFERENCES photos(id),
    query       TEXT NOT NULL,
    relevant    INTEGER NOT NULL CHECK (relevant IN (0, 1)),
    created_at  REAL NOT NULL
);
