#!/usr/bin/env bash
# Starts a real Gnocchi 4.4 (Debian 12's archive) for Bilean's integration tests, on 127.0.0.1:8041,
# with basic auth (user "admin", empty password, has the admin role), file storage and a PostgreSQL
# indexer on loopback (PostgreSQL with trust auth for user postgres: run .ci/postgres.sh first).
#
# Idempotent: when Gnocchi already answers /v1/status, it does nothing but print the URL. Otherwise
# it installs the packages when they are missing, creates the indexer database, writes the
# configuration under the state folder, runs gnocchi-upgrade, and starts uWSGI (the API) and
# gnocchi-metricd in the background. Debian's gnocchi-api wrapper is not used: it loads only the
# python3 uWSGI plugin and fails with "option '--http' is ambiguous".
#
#   bash .ci/gnocchi.sh stop   stops the uWSGI and metricd started by this script, then exits.
#
#   BILEAN_GNOCCHI_DIR   state folder (config, storage, logs, pid files); default /var/lib/bilean-ci/gnocchi
#   BILEAN_GNOCCHI_PORT  default 8041
#   BILEAN_GNOCCHI_DB    indexer database name; default bilean_gnocchi
#   BILEAN_GNOCCHI_FRESH =1 stops a Gnocchi started from this folder, drops the database and the
#                        storage and starts a fresh one
#
# Stop it with: bash .ci/gnocchi.sh stop (the README's stop command).
# The last line printed is BILEAN_TEST_GNOCCHI_URL=http://127.0.0.1:8041.
set -euo pipefail

DIR="${BILEAN_GNOCCHI_DIR:-/var/lib/bilean-ci/gnocchi}"
PORT="${BILEAN_GNOCCHI_PORT:-8041}"
DB="${BILEAN_GNOCCHI_DB:-bilean_gnocchi}"
URL="http://127.0.0.1:$PORT"
CONF="$DIR/gnocchi.conf"
PG=(psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -qtA)

up() { curl -fsS -m 5 -u admin: -H 'Accept: application/json' "$URL/v1/status" >/dev/null 2>&1; }

stop_ours() {
  for f in "$DIR/uwsgi.pid" "$DIR/metricd.pid"; do
    if [ -s "$f" ]; then
      pid=$(cat "$f")
      if kill -0 "$pid" 2>/dev/null; then
        # metricd is started in its own session: its id is also its process group's.
        kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
      fi
      rm -f "$f"
    fi
  done
  sleep 2
}

# "bash .ci/gnocchi.sh stop" stops a Gnocchi started by this script (the README's stop command).
if [ "${1:-}" = stop ]; then
  stop_ours
  exit 0
fi

if [ "${BILEAN_GNOCCHI_FRESH:-}" = 1 ]; then
  stop_ours
  "${PG[@]}" -d postgres -c "DROP DATABASE IF EXISTS \"$DB\"" >/dev/null
  rm -rf "$DIR/storage" "$DIR/incoming" "$DIR/locks"
elif up; then
  echo "gnocchi: already up at $URL" >&2
  echo "BILEAN_TEST_GNOCCHI_URL=$URL"
  exit 0
fi

need=()
for p in python3-gnocchi gnocchi-common gnocchi-api gnocchi-metricd uwsgi-plugin-python3 python3-psycopg2 curl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "gnocchi: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v psql >/dev/null || { echo "gnocchi: psql is missing: run .ci/postgres.sh first" >&2; exit 1; }
"${PG[@]}" -d postgres -c 'SELECT 1' >/dev/null || {
  echo "gnocchi: PostgreSQL does not answer on 127.0.0.1:5432 as user postgres (trust auth): run .ci/postgres.sh first" >&2
  exit 1
}

# A Gnocchi of ours that is running but not answering (half-started) is restarted.
stop_ours

mkdir -p "$DIR/storage/tmp" "$DIR/incoming/tmp" "$DIR/locks"
if [ -z "$("${PG[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
  "${PG[@]}" -d postgres -c "CREATE DATABASE \"$DB\"" >/dev/null
fi

REST=/usr/lib/python3/dist-packages/gnocchi/rest
cat >"$CONF" <<EOF
# Written by .ci/gnocchi.sh; rewritten on every start.
[DEFAULT]
coordination_url = file://$DIR/locks
parallel_operations = 2

[indexer]
url = postgresql://postgres@127.0.0.1:5432/$DB

[storage]
driver = file
file_basepath = $DIR/storage

[incoming]
driver = file
file_basepath = $DIR/incoming

[api]
auth_mode = basic
paste_config = $REST/api-paste.ini
max_limit = 1000

[oslo_policy]
policy_file = $REST/policy.yaml

[metricd]
workers = 1
metric_processing_delay = 2
metric_reporting_delay = -1
EOF

gnocchi-upgrade --config-file "$CONF" >"$DIR/upgrade.log" 2>&1 || {
  echo "gnocchi: gnocchi-upgrade failed; see $DIR/upgrade.log" >&2
  tail -20 "$DIR/upgrade.log" >&2
  exit 1
}

# The API: uWSGI with the python3 and http plugins, daemonized with a pid file.
uwsgi --plugin python3 --plugin http --http "127.0.0.1:$PORT" --http-keepalive --http-timeout 600 \
  --master --processes 3 --threads 2 --lazy-apps --need-app --die-on-term \
  --buffer-size 65535 --wsgi gnocchi.rest.wsgi --pyargv "--config-file $CONF" \
  --pidfile "$DIR/uwsgi.pid" --daemonize "$DIR/api.log"

# metricd in its own session, so it outlives this script and can be stopped as a group.
setsid gnocchi-metricd --config-file "$CONF" >"$DIR/metricd.log" 2>&1 </dev/null &
echo $! >"$DIR/metricd.pid"

for _ in $(seq 1 90); do
  if up; then
    echo "gnocchi: up at $URL (state in $DIR)" >&2
    echo "BILEAN_TEST_GNOCCHI_URL=$URL"
    exit 0
  fi
  sleep 1
done
echo "gnocchi: the API did not answer $URL/v1/status within 90 s; see $DIR/api.log" >&2
tail -30 "$DIR/api.log" >&2 || true
exit 1
