-- The roles of the identity that created a run: tool policies are checked
-- against them when the run executes, possibly days later on another node.
ALTER TABLE runs ADD COLUMN roles TEXT;
