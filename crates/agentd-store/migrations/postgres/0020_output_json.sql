-- Output contracts: the answer of an agent with `output_schema`, parsed as
-- JSON and validated (sealed like `output` when the store encrypts).
ALTER TABLE runs ADD COLUMN output_json text;
