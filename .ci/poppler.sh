#!/usr/bin/env bash
# Installs poppler-utils (pdftotext, pdftoppm) for the PDF golden and page-image tests of
# invoice/render. Idempotent; needs root and Debian's archive.
set -euo pipefail
if command -v pdftotext >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -qq
apt-get -o DPkg::Lock::Timeout=300 install -y -qq poppler-utils >/dev/null
command -v pdftotext >/dev/null && command -v pdftoppm >/dev/null
