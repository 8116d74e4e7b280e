-- When a job ended as failed (dead), so that retention can purge it after a
-- while. Done jobs are deleted in the commit that applies them.
ALTER TABLE jobs ADD COLUMN finished_at timestamptz;
-- A failed row's last attempt was due at next_attempt_at: the best
-- estimate of when it failed.
UPDATE jobs SET finished_at = next_attempt_at WHERE state = 'failed';
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state = 'failed';
