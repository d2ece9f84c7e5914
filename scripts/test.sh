#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs what is missing (Mosquitto, the
# PostgreSQL server programs, Chromium, ffmpeg), installs the project in .venv, runs ruff and mypy,
# then pytest. The tests start a PostgreSQL cluster and a Mosquitto broker of their own (initdb in a
# temporary directory, loopback ports of their own) and remove them afterwards: nothing on the
# machine is configured, and whichever PostgreSQL major version the system has is used.
# Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

need_pkgs=()
[ -x /usr/sbin/mosquitto ] || need_pkgs+=(mosquitto)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null 2>&1 \
  || need_pkgs+=(postgresql)
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
[ -x /usr/bin/ffmpeg ] || need_pkgs+=(ffmpeg)  # real MP4 footage for the case-file tests
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "installing: ${need_pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    "${need_pkgs[@]}" >/dev/null
fi

# The project, in its own virtual environment.
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy  # configured in pyproject.toml; its cache (.mypy_cache) keeps a re-run quick
.venv/bin/python -m pytest -n "${FACILITY_TEST_WORKERS:-2}" --durations=15 "$@"
