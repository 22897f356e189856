-- Audit trail: one row per signing decision (signed or refused), written in the same
-- transaction as the protection record where there is one. time_ms is Unix time in
-- milliseconds. signing_root is the eth2 signing root or the Tezos blake2b-256 payload hash.
CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    time_ms BIGINT NOT NULL,
    chain TEXT NOT NULL CHECK (chain IN ('eth2', 'tezos')),
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    slot BIGINT,
    epoch BIGINT,
    source_epoch BIGINT,
    level BIGINT,
    round BIGINT,
    signing_root BYTEA CHECK (signing_root IS NULL OR length(signing_root) = 32),
    decision TEXT NOT NULL CHECK (decision IN ('signed', 'refused')),
    reason TEXT,
    caller TEXT
);
CREATE INDEX audit_log_time ON audit_log (time_ms);

-- Per-key totals kept beside the audit log (not reduced by audit retention), so that the key
-- inventory does not scan the log. Writers of eth2 keys hold the validator's advisory lock.
CREATE TABLE key_activity (
    chain TEXT NOT NULL CHECK (chain IN ('eth2', 'tezos')),
    key TEXT NOT NULL,
    signed_count BIGINT NOT NULL DEFAULT 0,
    refused_count BIGINT NOT NULL DEFAULT 0,
    last_signed_ms BIGINT,
    last_kind TEXT,
    last_slot BIGINT,
    last_epoch BIGINT,
    last_level BIGINT,
    last_round BIGINT,
    PRIMARY KEY (chain, key)
);
