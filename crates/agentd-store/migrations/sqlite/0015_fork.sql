-- A forked run's origin (POST /v1/runs/{id}/fork): the run it was forked
-- from and how many of that run's steps it started with. NULL otherwise.
ALTER TABLE runs ADD COLUMN forked_from BLOB;
ALTER TABLE runs ADD COLUMN fork_step INTEGER;
