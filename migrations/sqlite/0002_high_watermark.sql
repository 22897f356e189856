-- Global stop: nothing at or above this epoch (attestations) or slot (blocks) is signed.
CREATE TABLE high_watermark (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch INTEGER NOT NULL,
    slot INTEGER NOT NULL
);
