-- One row per periodic job: when it last ran and which replica holds its lease. A replica
-- takes the lease with one conditional upsert that succeeds only if the job is due and the
-- lease is free or expired. Times are RFC 3339 UTC text, which sorts chronologically.

CREATE TABLE scheduler_job (
    name TEXT PRIMARY KEY,
    last_run_at TEXT,
    lease_holder TEXT,
    lease_expires_at TEXT
);
