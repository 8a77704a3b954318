-- Where a run came from: the creating request's id and W3C trace context
-- (JSON), so every attempt, in any process, logs that request id and
-- continues the request's trace. NULL for runs created without one.
ALTER TABLE runs ADD COLUMN origin TEXT;
