-- Slashing protection for Ethereum validators (EIP-3076 full history).
-- Slots and epochs are stored as INTEGER (signed 64-bit); palisade refuses values above 2^63 - 1.

CREATE TABLE metadata (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    genesis_validators_root BLOB NOT NULL CHECK (length(genesis_validators_root) = 32)
);

CREATE TABLE validators (
    id INTEGER PRIMARY KEY,
    public_key BLOB NOT NULL UNIQUE CHECK (length(public_key) = 48),
    enabled INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE signed_blocks (
    validator_id INTEGER NOT NULL REFERENCES validators (id),
    slot INTEGER NOT NULL,
    signing_root BLOB CHECK (signing_root IS NULL OR length(signing_root) = 32),
    PRIMARY KEY (validator_id, slot)
) WITHOUT ROWID;

CREATE TABLE signed_attestations (
    validator_id INTEGER NOT NULL REFERENCES validators (id),
    source_epoch INTEGER NOT NULL,
    target_epoch INTEGER NOT NULL,
    signing_root BLOB CHECK (signing_root IS NULL OR length(signing_root) = 32),
    PRIMARY KEY (validator_id, target_epoch)
) WITHOUT ROWID;

CREATE INDEX signed_attestations_by_source ON signed_attestations (validator_id, source_epoch);

CREATE TABLE low_watermarks (
    validator_id INTEGER PRIMARY KEY REFERENCES validators (id),
    slot INTEGER,
    source_epoch INTEGER,
    target_epoch INTEGER
);
