-- Imports never weaken the record (issue 13): an attestation record is identified by
-- (validator, target epoch, source epoch), so an imported attestation at a target epoch that
-- already has a record with another source is kept beside it instead of replacing it.
-- Both stay and both protect: any new attestation at that target is a double vote, and each
-- source counts for the surround checks. At the same (target, source) a differing or missing
-- signing root merges to NULL (conflicts with everything at that target).
ALTER TABLE signed_attestations DROP CONSTRAINT signed_attestations_pkey;
ALTER TABLE signed_attestations ADD PRIMARY KEY (validator_id, target_epoch, source_epoch);

-- Pruning watermarks, apart from the import watermarks (EIP-3076's minima): below them not
-- even an exact repeat of a record is signed, because a record there (imported after the
-- pruning) may conflict with a deleted one. Which of the existing watermarks came from
-- pruning cannot be told any more, so all of them become pruning watermarks too (stricter).
ALTER TABLE low_watermarks ADD COLUMN pruned_slot BIGINT;
ALTER TABLE low_watermarks ADD COLUMN pruned_source_epoch BIGINT;
ALTER TABLE low_watermarks ADD COLUMN pruned_target_epoch BIGINT;
UPDATE low_watermarks SET pruned_slot = slot, pruned_source_epoch = source_epoch,
                          pruned_target_epoch = target_epoch;
