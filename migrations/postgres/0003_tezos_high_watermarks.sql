-- Tezos high watermarks (octez-signer semantics): one row per (chain id, baker pkh, kind).
-- A request is signed only above (level, round), or again with the stored signature when its
-- bytes hash to payload_hash at the same (level, round). Writers serialise per row with a
-- transaction-scoped advisory lock in the two-key space (class 0x747a), apart from eth2's.
CREATE TABLE tezos_high_watermarks (
    chain_id BYTEA NOT NULL CHECK (length(chain_id) = 4),
    pkh TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('block', 'preattestation', 'attestation')),
    level BIGINT NOT NULL CHECK (level >= 0),
    round BIGINT NOT NULL CHECK (round >= 0),
    payload_hash BYTEA NOT NULL CHECK (length(payload_hash) = 32),
    signature BYTEA NOT NULL,
    PRIMARY KEY (chain_id, pkh, kind)
);
