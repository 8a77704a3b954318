-- Journal records v2: a tool or human step names the tool call it answers.
-- Rows written before (v = 1) have NULL here; readers derive it through
-- agentd_core::checkpoint.
ALTER TABLE steps ADD COLUMN call_id text;
