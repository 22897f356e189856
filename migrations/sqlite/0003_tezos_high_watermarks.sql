-- Tezos high watermarks (octez-signer semantics): one row per (chain id, baker pkh, kind).
-- A request is signed only above (level, round), or again with the stored signature when its
-- bytes hash to payload_hash at the same (level, round).
CREATE TABLE tezos_high_watermarks (
    chain_id BLOB NOT NULL CHECK (length(chain_id) = 4),
    pkh TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('block', 'preattestation', 'attestation')),
    level INTEGER NOT NULL CHECK (level >= 0),
    round INTEGER NOT NULL CHECK (round >= 0),
    payload_hash BLOB NOT NULL CHECK (length(payload_hash) = 32),
    signature BLOB NOT NULL,
    PRIMARY KEY (chain_id, pkh, kind)
);
