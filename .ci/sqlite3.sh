#!/usr/bin/env bash
# Installs Debian's sqlite3 command-line shell: a test opens the demo store with it, so that an
# operator can always inspect the embedded store with the system's own tools. Idempotent.
set -euo pipefail
command -v sqlite3 >/dev/null 2>&1 && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -qq
apt-get -o DPkg::Lock::Timeout=300 install -y -qq sqlite3 >/dev/null
command -v sqlite3 >/dev/null
