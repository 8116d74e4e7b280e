-- The background-job outbox. The API stores a row before it answers 202; a
-- worker in any pod claims it (SELECT ... FOR UPDATE SKIP LOCKED), applies
-- it and deletes it in the same transaction. A failed attempt is retried at
-- next_attempt_at; after the last attempt the row stays, state 'failed'.
CREATE TABLE jobs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text        NOT NULL,
    -- No foreign key: checking one takes a lock on users, and storing a
    -- job must not wait for a lock held on users (a job for a user deleted
    -- since has nothing to do and is simply done).
    user_id         bigint      NOT NULL,
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX jobs_due ON jobs (next_attempt_at, id) WHERE state = 'pending';
