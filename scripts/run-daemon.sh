#!/usr/bin/env bash
# Set up facility in .venv, create or upgrade the embedded SQLite database (facility.db in home:
# beside the configuration file, $FACILITY_HOME, or the user's data directory; README "Where the
# data lives"), and run the daemon in the foreground. No other service is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e .
.venv/bin/facility init
exec .venv/bin/facility daemon "$@"
