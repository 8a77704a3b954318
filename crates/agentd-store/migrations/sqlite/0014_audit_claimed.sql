-- A worker's claim of a run is audited as `claimed` (it was `running`, the
-- status the claim sets); earlier records get the new name, so one kind
-- filter finds every claim.
UPDATE audit SET event = 'claimed' WHERE event = 'running';
