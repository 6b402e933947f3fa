#!/usr/bin/env bash
# Makes sure a PostgreSQL server for Bilean's tests runs on 127.0.0.1:5432 and accepts user
# postgres without a password (trust authentication on loopback), with btree_gist available.
#
# Idempotent: when such a server already answers, it only checks it. Otherwise it installs
# PostgreSQL from Debian's archive when it is missing (apt-get install postgresql), creates the
# default cluster when there is none, adds loopback trust lines to pg_hba.conf and starts the
# cluster with pg_ctlcluster (no systemd needed). Any failure exits non-zero with the reason: in
# CI a missing server must fail the run, not skip the PostgreSQL tests.
#
# The tests read BILEAN_TEST_DATABASE_URL; the last line printed is its value.
set -euo pipefail

URL="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

die() { echo "postgres: $*" >&2; exit 1; }

ok() {
  command -v psql >/dev/null 2>&1 &&
    PGCONNECT_TIMEOUT=5 psql "$URL" -v ON_ERROR_STOP=1 -qtAc \
      "SELECT 1 FROM pg_available_extensions WHERE name = 'btree_gist'" 2>/dev/null | grep -q 1
}

if ok; then
  echo "postgres: already up at 127.0.0.1:5432 (trust, btree_gist available)" >&2
  echo "BILEAN_TEST_DATABASE_URL=$URL"
  exit 0
fi

if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
  [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed and this script is not root: apt-get install postgresql"
  echo "postgres: installing PostgreSQL from Debian's archive" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq || die "apt-get update failed"
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq postgresql postgresql-contrib >/dev/null || die "apt-get install postgresql failed"
fi

VERSION="$(ls /usr/lib/postgresql | sort -V | tail -n1)"
[ -n "$VERSION" ] || die "no PostgreSQL version under /usr/lib/postgresql"
CLUSTER=main
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$VERSION $CLUSTER"; then
  echo "postgres: creating cluster $VERSION/$CLUSTER" >&2
  pg_createcluster "$VERSION" "$CLUSTER" >/dev/null || die "pg_createcluster $VERSION $CLUSTER failed"
fi
CONF_DIR="/etc/postgresql/$VERSION/$CLUSTER"
HBA="$CONF_DIR/pg_hba.conf"
[ -f "$HBA" ] || die "no $HBA"
# Trust on loopback for the tests; the lines go first so they win over Debian's defaults.
if ! grep -q '^# bilean-ci trust' "$HBA"; then
  tmp="$(mktemp)"
  {
    echo '# bilean-ci trust: local test server, loopback only'
    echo 'host    all    all    127.0.0.1/32    trust'
    echo 'host    all    all    ::1/128         trust'
    echo 'local   all    postgres               trust'
    cat "$HBA"
  } >"$tmp"
  cat "$tmp" >"$HBA"
  rm -f "$tmp"
fi
# Listen on loopback, port 5432.
if ! grep -q "^listen_addresses = 'localhost'" "$CONF_DIR/postgresql.conf"; then
  echo "listen_addresses = 'localhost'" >>"$CONF_DIR/postgresql.conf"
fi
if ! grep -q '^port = 5432' "$CONF_DIR/postgresql.conf"; then
  echo "port = 5432" >>"$CONF_DIR/postgresql.conf"
fi

status="$(pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1==v && $2==c {print $4}')"
if [ "$status" = online ]; then
  pg_ctlcluster "$VERSION" "$CLUSTER" reload || die "pg_ctlcluster reload failed"
else
  echo "postgres: starting cluster $VERSION/$CLUSTER" >&2
  pg_ctlcluster "$VERSION" "$CLUSTER" start || {
    tail -n 30 "/var/log/postgresql/postgresql-$VERSION-$CLUSTER.log" >&2 || true
    die "pg_ctlcluster start failed"
  }
fi

for _ in $(seq 1 30); do
  if ok; then
    echo "postgres: up at 127.0.0.1:5432" >&2
    echo "BILEAN_TEST_DATABASE_URL=$URL"
    exit 0
  fi
  sleep 1
done
die "the server does not accept user postgres on 127.0.0.1:5432 with trust authentication (see $HBA)"
