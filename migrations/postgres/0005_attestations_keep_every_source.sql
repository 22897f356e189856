-- Imports never weaken the record (issue 13): an attestation record is identified by
-- (validator, target epoch, source epoch), so an imported attestation at a target epoch that
-- already has a record with another source is kept beside it instead of replacing it.
-- Both stay and both protect: any new attestation at that target is a double vote, and each
-- source counts for the surround checks. At the same (target, source) a differing or missing
-- signing root merges to NULL (conflicts with everything at that target).
ALTER TABLE signed_attestations DROP CONSTRAINT signed_attestations_pkey;
ALTER TABLE signed_attestations ADD PRIMARY KEY (validator_id, target_epoch, source_epoch);

