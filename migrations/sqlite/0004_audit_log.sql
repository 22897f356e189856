-- Audit trail: one row per signing decision (signed or refused), written in the same
-- transaction as the protection record where there is one. time_ms is Unix time in
-- milliseconds. signing_root is the eth2 signing root or the Tezos blake2b-256 payload hash.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    chain TEXT NOT NULL CHECK (chain IN ('eth2', 'tezos')),
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    slot INTEGER,
    epoch INTEGER,
    source_epoch INTEGER,
    level INTEGER,
    round INTEGER,
    signing_root BLOB CHECK (signing_root IS NULL OR length(signing_root) = 32),
    decision TEXT NOT NULL CHECK (decision IN ('signed', 'refused')),
    reason TEXT,
    caller TEXT
);
CREATE INDEX audit_log_time ON audit_log (time_ms);

-- Per-key totals kept beside the audit log (not reduced by audit retention), so that the key
-- inventory does not scan the log. Maintained by the trigger below, inside the inserting
-- transaction, so a signing request pays one statement for its audit entry.
CREATE TABLE key_activity (
    chain TEXT NOT NULL CHECK (chain IN ('eth2', 'tezos')),
    key TEXT NOT NULL,
    signed_count INTEGER NOT NULL DEFAULT 0,
    refused_count INTEGER NOT NULL DEFAULT 0,
    last_signed_ms INTEGER,
    last_kind TEXT,
    last_slot INTEGER,
    last_epoch INTEGER,
    last_level INTEGER,
    last_round INTEGER,
    PRIMARY KEY (chain, key)
);

CREATE TRIGGER audit_log_key_activity AFTER INSERT ON audit_log
BEGIN
    INSERT OR IGNORE INTO key_activity (chain, key) VALUES (NEW.chain, NEW.key);
    UPDATE key_activity SET
        signed_count = signed_count + (NEW.decision = 'signed'),
        refused_count = refused_count + (NEW.decision = 'refused'),
        last_signed_ms = CASE WHEN NEW.decision = 'signed' THEN NEW.time_ms ELSE last_signed_ms END,
        last_kind = CASE WHEN NEW.decision = 'signed' THEN NEW.kind ELSE last_kind END,
        last_slot = CASE WHEN NEW.decision = 'signed' THEN NEW.slot ELSE last_slot END,
        last_epoch = CASE WHEN NEW.decision = 'signed' THEN NEW.epoch ELSE last_epoch END,
        last_level = CASE WHEN NEW.decision = 'signed' THEN NEW.level ELSE last_level END,
        last_round = CASE WHEN NEW.decision = 'signed' THEN NEW.round ELSE last_round END
    WHERE chain = NEW.chain AND key = NEW.key;
END;
