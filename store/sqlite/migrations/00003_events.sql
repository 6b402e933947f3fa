-- Notification events (bilean listen) and the quarantine of messages that are not events.

-- +goose Up

-- One row per message id: a redelivered or duplicate notification is a no-op. Trigger records
-- are derived from a resource's events ordered by at (their own time), never by arrival (seq).
CREATE TABLE events (
    seq           INTEGER PRIMARY KEY,
    message_id    TEXT NOT NULL UNIQUE,
    customer_id   TEXT NOT NULL DEFAULT '',  -- '' until a close that lacked its project is matched
    resource_id   TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    event_type    TEXT NOT NULL,
    action        TEXT NOT NULL CHECK (action IN ('open', 'change', 'close')),
    at            INTEGER NOT NULL,
    attributes    TEXT NOT NULL DEFAULT '{}',
    received_at   INTEGER NOT NULL
);
CREATE INDEX events_resource ON events (resource_id, at);

CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY,
    digest      TEXT NOT NULL UNIQUE,          -- sha256 of the body: a redelivery is kept once
    message_id  TEXT NOT NULL DEFAULT '',
    event_type  TEXT NOT NULL DEFAULT '',
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '',
    exchange    TEXT NOT NULL DEFAULT '',
    routing_key TEXT NOT NULL DEFAULT '',
    body        BLOB NOT NULL,
    received_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE quarantine;
DROP TABLE events;
