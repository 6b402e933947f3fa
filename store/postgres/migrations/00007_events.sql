-- Notification events (bilean listen) and the quarantine of messages that are not events.

-- +goose Up

-- One row per message id: a redelivered or duplicate notification is a no-op. Trigger records
-- are derived from a resource's events ordered by at (their own time), never by arrival (seq).
CREATE TABLE events (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id    text NOT NULL UNIQUE,
    customer_id   text NOT NULL DEFAULT '',   -- '' until a close that lacked its project is matched
    resource_id   text NOT NULL,
    resource_type text NOT NULL,
    event_type    text NOT NULL,
    action        text NOT NULL CHECK (action IN ('open', 'change', 'close')),
    at            timestamptz NOT NULL,
    attributes    text NOT NULL DEFAULT '{}', -- canonical JSON (sorted keys), as usage_records
    received_at   timestamptz NOT NULL
);
CREATE INDEX events_resource ON events (resource_id, at);

CREATE TABLE quarantine (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest      text NOT NULL UNIQUE,          -- sha256 of the body: a redelivery is kept once
    message_id  text NOT NULL DEFAULT '',
    event_type  text NOT NULL DEFAULT '',
    reason      text NOT NULL,
    detail      text NOT NULL DEFAULT '',
    exchange    text NOT NULL DEFAULT '',
    routing_key text NOT NULL DEFAULT '',
    body        bytea NOT NULL,
    received_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE quarantine;
DROP TABLE events;
