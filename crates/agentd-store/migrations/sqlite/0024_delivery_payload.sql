-- A delivery that is not a run event (a budget alert) carries its own
-- body; run events keep theirs NULL and send the run as it is then.
ALTER TABLE deliveries ADD COLUMN payload TEXT;
