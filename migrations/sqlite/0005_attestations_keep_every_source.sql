-- Imports never weaken the record (issue 13): an attestation record is identified by
-- (validator, target epoch, source epoch), so an imported attestation at a target epoch that
-- already has a record with another source is kept beside it instead of replacing it.
-- Both stay and both protect: any new attestation at that target is a double vote, and each
-- source counts for the surround checks. At the same (target, source) a differing or missing
-- signing root merges to NULL (conflicts with everything at that target).
CREATE TABLE signed_attestations_v2 (
    validator_id INTEGER NOT NULL REFERENCES validators (id),
    source_epoch INTEGER NOT NULL,
    target_epoch INTEGER NOT NULL,
    signing_root BLOB CHECK (signing_root IS NULL OR length(signing_root) = 32),
    PRIMARY KEY (validator_id, target_epoch, source_epoch)
) WITHOUT ROWID;

INSERT INTO signed_attestations_v2 (validator_id, source_epoch, target_epoch, signing_root)
SELECT validator_id, source_epoch, target_epoch, signing_root FROM signed_attestations;

DROP TABLE signed_attestations;
ALTER TABLE signed_attestations_v2 RENAME TO signed_attestations;
CREATE INDEX signed_attestations_by_source ON signed_attestations (validator_id, source_epoch);

