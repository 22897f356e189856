-- Slashing protection for Ethereum validators (EIP-3076 full history), shared by every
-- palisade instance that points at this database. Slots and epochs are BIGINT; palisade
-- refuses values above 2^63 - 1.

CREATE TABLE metadata (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    genesis_validators_root BYTEA NOT NULL CHECK (length(genesis_validators_root) = 32)
);

CREATE TABLE validators (
    id BIGSERIAL PRIMARY KEY,
    public_key BYTEA NOT NULL UNIQUE CHECK (length(public_key) = 48),
    enabled BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE signed_blocks (
    validator_id BIGINT NOT NULL REFERENCES validators (id),
    slot BIGINT NOT NULL,
    signing_root BYTEA CHECK (signing_root IS NULL OR length(signing_root) = 32),
    PRIMARY KEY (validator_id, slot)
);

CREATE TABLE signed_attestations (
    validator_id BIGINT NOT NULL REFERENCES validators (id),
    source_epoch BIGINT NOT NULL,
    target_epoch BIGINT NOT NULL,
    signing_root BYTEA CHECK (signing_root IS NULL OR length(signing_root) = 32),
    PRIMARY KEY (validator_id, target_epoch)
);

CREATE INDEX signed_attestations_by_source ON signed_attestations (validator_id, source_epoch);

CREATE TABLE low_watermarks (
    validator_id BIGINT PRIMARY KEY REFERENCES validators (id),
    slot BIGINT,
    source_epoch BIGINT,
    target_epoch BIGINT
);
