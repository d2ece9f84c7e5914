#!/usr/bin/env bash
# Set up facility in .venv, create or upgrade the embedded SQLite database (./var/facility.db, or
# $FACILITY_HOME), and run the daemon in the foreground. No other service is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e .
.venv/bin/facility init
exec .venv/bin/facility daemon "$@"
