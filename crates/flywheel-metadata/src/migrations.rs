//! Versioned schema migrations. Append only: a released migration never
//! changes; a new schema version is a new entry.

pub const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE pipelines (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    digest      TEXT NOT NULL,
    path        TEXT NOT NULL,
    source      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (name, digest)
);
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    pipeline_id INTEGER NOT NULL REFERENCES pipelines(id),
    status      TEXT NOT NULL,
    parameters  TEXT NOT NULL,
    options     TEXT NOT NULL,
    trigger     TEXT NOT NULL,
    started_by  TEXT NOT NULL,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    duration_ms INTEGER,
    error       TEXT
);
CREATE INDEX runs_status ON runs(status);
CREATE TABLE executions (
    id                INTEGER PRIMARY KEY,
    run_id            INTEGER NOT NULL REFERENCES runs(id),
    step              TEXT NOT NULL,
    component         TEXT NOT NULL,
    component_version TEXT NOT NULL,
    parameters        TEXT NOT NULL,
    cache_key         TEXT,
    status            TEXT NOT NULL,
    cache_hit         INTEGER NOT NULL DEFAULT 0,
    attempts          INTEGER NOT NULL DEFAULT 1,
    started_at        TEXT NOT NULL,
    ended_at          TEXT,
    duration_ms       INTEGER,
    log_path          TEXT,
    error             TEXT,
    summary           TEXT
);
CREATE INDEX executions_run ON executions(run_id);
CREATE INDEX executions_cache ON executions(cache_key, status);
CREATE TABLE artifacts (
    id          INTEGER PRIMARY KEY,
    type        TEXT NOT NULL,
    uri         TEXT NOT NULL,
    digest      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    properties  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (digest, type)
);
CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    execution_id INTEGER NOT NULL REFERENCES executions(id),
    artifact_id  INTEGER NOT NULL REFERENCES artifacts(id),
    kind         TEXT NOT NULL CHECK (kind IN ('input', 'output')),
    name         TEXT NOT NULL
);
CREATE INDEX events_execution ON events(execution_id);
CREATE INDEX events_artifact ON events(artifact_id);
CREATE TABLE model_versions (
    id          INTEGER PRIMARY KEY,
    model_name  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    artifact_id INTEGER NOT NULL REFERENCES artifacts(id),
    run_id      INTEGER REFERENCES runs(id),
    created_at  TEXT NOT NULL,
    UNIQUE (model_name, version)
);
"#,
    ),
    (
        2,
        r#"
CREATE TABLE signals (
    id           INTEGER PRIMARY KEY,
    run_id       INTEGER NOT NULL REFERENCES runs(id),
    execution_id INTEGER NOT NULL REFERENCES executions(id),
    kind         TEXT NOT NULL,
    message      TEXT NOT NULL,
    details      TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX signals_kind ON signals(kind, id);
"#,
    ),
    (
        3,
        r#"
CREATE TABLE model_aliases (
    model_name TEXT NOT NULL,
    alias      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (model_name, alias)
);
CREATE TABLE registry_audit (
    id           INTEGER PRIMARY KEY,
    model_name   TEXT NOT NULL,
    action       TEXT NOT NULL,
    alias        TEXT,
    from_version INTEGER,
    to_version   INTEGER,
    run_id       INTEGER REFERENCES runs(id),
    caller       TEXT NOT NULL,
    at           TEXT NOT NULL
);
"#,
    ),
    (
        4,
        r#"
ALTER TABLE executions ADD COLUMN parent_id INTEGER REFERENCES executions(id);
CREATE INDEX executions_parent ON executions(parent_id);
"#,
    ),
    (
        5,
        r#"
ALTER TABLE model_versions ADD COLUMN approval TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE model_versions ADD COLUMN approval_by TEXT;
ALTER TABLE model_versions ADD COLUMN approval_at TEXT;
ALTER TABLE model_versions ADD COLUMN approval_reason TEXT;
ALTER TABLE model_versions ADD COLUMN description TEXT;
CREATE TABLE model_version_tags (
    version_id INTEGER NOT NULL REFERENCES model_versions(id),
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (version_id, key)
);
ALTER TABLE registry_audit ADD COLUMN version INTEGER;
ALTER TABLE registry_audit ADD COLUMN reason TEXT;
ALTER TABLE registry_audit ADD COLUMN detail TEXT;
CREATE INDEX registry_audit_model ON registry_audit(model_name, id);
"#,
    ),
    (
        6,
        r#"
CREATE TABLE serving_segments (
    id         INTEGER PRIMARY KEY,
    model_name TEXT NOT NULL,
    version    INTEGER NOT NULL,
    hour       TEXT NOT NULL,
    path       TEXT NOT NULL UNIQUE,
    rows       INTEGER NOT NULL,
    first_us   INTEGER NOT NULL,
    last_us    INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX serving_segments_window ON serving_segments(model_name, first_us);
CREATE TABLE serving_requests (
    request_id TEXT PRIMARY KEY,
    model_name TEXT NOT NULL,
    version    INTEGER NOT NULL,
    rows       INTEGER NOT NULL,
    target     TEXT NOT NULL CHECK (target IN ('number', 'text')),
    at_us      INTEGER NOT NULL,
    segment_id INTEGER NOT NULL REFERENCES serving_segments(id)
);
CREATE TABLE serving_feedback (
    request_id TEXT NOT NULL,
    row        INTEGER NOT NULL,
    model_name TEXT NOT NULL,
    label_num  REAL,
    label_text TEXT,
    at_us      INTEGER NOT NULL,
    PRIMARY KEY (request_id, row)
);
CREATE INDEX serving_requests_window ON serving_requests(model_name, at_us);
"#,
    ),
    (
        7,
        // A logged request costs one row in one B-tree (not three): the
        // model, version and label kind are its segment's, and feedback is
        // windowed by its own model name.
        r#"
ALTER TABLE serving_segments ADD COLUMN target TEXT NOT NULL DEFAULT 'number';
UPDATE serving_segments SET target = COALESCE(
    (SELECT r.target FROM serving_requests r WHERE r.segment_id = serving_segments.id LIMIT 1), 'number');
CREATE TABLE serving_requests_lean (
    request_id TEXT PRIMARY KEY,
    segment_id INTEGER NOT NULL REFERENCES serving_segments(id),
    rows       INTEGER NOT NULL,
    at_us      INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO serving_requests_lean (request_id, segment_id, rows, at_us)
    SELECT request_id, segment_id, rows, at_us FROM serving_requests;
DROP INDEX serving_requests_window;
DROP TABLE serving_requests;
ALTER TABLE serving_requests_lean RENAME TO serving_requests;
"#,
    ),
    (
        8,
        // Monitoring: each window of logged predictions scored, in order per
        // model; its scores and alerts as JSON (their shape is the monitor's).
        r#"
CREATE TABLE monitor_windows (
    id         INTEGER PRIMARY KEY,
    model_name TEXT NOT NULL,
    version    INTEGER NOT NULL,
    first_us   INTEGER NOT NULL,
    last_us    INTEGER NOT NULL,
    rows       INTEGER NOT NULL,
    labeled    INTEGER NOT NULL,
    alerts     INTEGER NOT NULL,
    scores     TEXT NOT NULL,
    at_us      INTEGER NOT NULL
);
CREATE INDEX monitor_windows_by_model ON monitor_windows(model_name, last_us);
"#,
    ),
    (
        9,
        // `flywheel up`: the deployments recorded in the home (run again
        // when none is named), and what each trigger did last, so that a
        // restart neither fires one twice nor forgets its cooldown. A
        // trigger is known by what it is (its kind and settings), not its
        // place in the file, so adding one does not hand it another's state.
        r#"
CREATE TABLE deployments (
    name        TEXT PRIMARY KEY,
    path        TEXT NOT NULL,
    digest      TEXT NOT NULL,
    model_name  TEXT NOT NULL,
    recorded_us INTEGER NOT NULL
);
CREATE TABLE trigger_states (
    deployment  TEXT NOT NULL,
    trigger_key TEXT NOT NULL,
    fired_us    INTEGER,
    used_window INTEGER NOT NULL DEFAULT 0,
    looked_us   INTEGER,
    PRIMARY KEY (deployment, trigger_key)
);
"#,
    ),
    (
        10,
        // `flywheel up`'s canaries: when each version went out as a canary
        // of a deployment, and how that ended (promoted, rolled back), so
        // that a restart goes on holding it, or leaves it decided. And when
        // each trigger's state began.
        r#"
-- Windows that began before a trigger's state did never fire it.
ALTER TABLE trigger_states ADD COLUMN since_us INTEGER;
CREATE TABLE canaries (
    deployment TEXT NOT NULL,
    version    INTEGER NOT NULL,
    started_us INTEGER NOT NULL,
    decided_us INTEGER,
    outcome    TEXT,
    reason     TEXT,
    PRIMARY KEY (deployment, version)
);
-- Runs asked for (`flywheel trigger`, `POST /v2/deployments/NAME/trigger`):
-- an `on_demand` trigger takes them, and says what it did with each.
CREATE TABLE run_requests (
    id           INTEGER PRIMARY KEY,
    deployment   TEXT NOT NULL,
    reason       TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    at_us        INTEGER NOT NULL,
    taken_us     INTEGER,
    outcome      TEXT
);
CREATE INDEX run_requests_pending ON run_requests(deployment, taken_us);
-- The files a `new_data` trigger watches: each one's size and time as
-- last seen, since when (it settles when they stay), and when a run took
-- it at that size and time (a changed file is new again).
CREATE TABLE watched_files (
    deployment  TEXT NOT NULL,
    trigger_key TEXT NOT NULL,
    path        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    mtime_us    INTEGER NOT NULL,
    seen_us     INTEGER NOT NULL,
    taken_us    INTEGER,
    PRIMARY KEY (deployment, trigger_key, path)
);
-- `flywheel up` processes serving this home, for `flywheel status`.
CREATE TABLE up_processes (
    pid         INTEGER NOT NULL,
    host        TEXT NOT NULL,
    addr        TEXT NOT NULL,
    deployments TEXT NOT NULL,
    started_us  INTEGER NOT NULL,
    PRIMARY KEY (host, pid)
);
"#,
    ),
    (
        11,
        // Late labels: the labels of a model that arrived since a time, and
        // the windows holding a span of request times, found by index.
        r#"
CREATE INDEX serving_feedback_arrival ON serving_feedback(model_name, at_us);
CREATE INDEX monitor_windows_span ON monitor_windows(model_name, last_us);
"#,
    ),
    (
        12,
        // Windows per version, found by index; and what each window keeps to
        // merge with others into longer windows:
        // its inputs' sketch and its metric's sums (JSON), beside the window
        // so that listing windows does not read them.
        r#"
CREATE TABLE window_sketches (
    window_id INTEGER PRIMARY KEY REFERENCES monitor_windows(id) ON DELETE CASCADE,
    sketch    TEXT NOT NULL
);
-- Windows are cut per version: each version's last window, by index.
CREATE INDEX monitor_windows_version ON monitor_windows(model_name, version, id);
CREATE INDEX serving_segments_end ON serving_segments(model_name, last_us);
"#,
    ),
    (
        13,
        // A firing queued behind a deployment's run (`when_busy = "queue"`),
        // kept so that an `up` stopped or killed meanwhile starts it after
        // restarting: one per deployment, the first to fire, with the new
        // files of every `new_data` firing it stands for (a JSON array).
        r#"
CREATE TABLE queued_firings (
    deployment TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    new_files  TEXT NOT NULL DEFAULT '[]',
    at_us      INTEGER NOT NULL
);
"#,
    ),
    (
        14,
        // Requests with ids the server made are indexed by block of
        // consecutive numbers (`request_blocks.rs`), one row per block and
        // segment; a label keeps its request's time, so that feedback is
        // windowed without a row per request to join.
        r#"
CREATE TABLE serving_request_blocks (
    prefix     TEXT NOT NULL,
    block      INTEGER NOT NULL,
    segment_id INTEGER NOT NULL REFERENCES serving_segments(id),
    first_n    INTEGER NOT NULL,
    last_n     INTEGER NOT NULL,
    requests   BLOB NOT NULL,
    PRIMARY KEY (prefix, block, segment_id)
) WITHOUT ROWID;
CREATE INDEX serving_request_blocks_segment ON serving_request_blocks(segment_id);
ALTER TABLE serving_feedback ADD COLUMN request_at_us INTEGER;
UPDATE serving_feedback SET request_at_us =
    (SELECT r.at_us FROM serving_requests r WHERE r.request_id = serving_feedback.request_id);
"#,
    ),
];
