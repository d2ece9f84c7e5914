#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs and starts what the tests need
# (Mosquitto, the PostgreSQL 15 cluster), installs the project in .venv, then runs ruff and pytest.
# Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

MQTT_PORT="${FACILITY_TEST_MQTT_PORT:-18830}"
PG_URL="${FACILITY_TEST_PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

need_pkgs=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_pkgs+=(mosquitto)
command -v pg_ctlcluster >/dev/null 2>&1 || need_pkgs+=(postgresql)
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "installing: ${need_pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# Mosquitto on loopback, on the port the tests use (the Debian service may or may not be running).
if ! (exec 3<>/dev/tcp/127.0.0.1/"$MQTT_PORT") 2>/dev/null; then
  conf="$(mktemp -d)/mosquitto.conf"
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n' \
    "$MQTT_PORT" >"$conf"
  /usr/sbin/mosquitto -d -c "$conf"
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$MQTT_PORT") 2>/dev/null && break; sleep 0.1; done
fi

# PostgreSQL 15: trust on 127.0.0.1 for the test database, cluster started, database `test`.
hba=/etc/postgresql/15/main/pg_hba.conf
if ! $SUDO grep -q '^host all all 127.0.0.1/32 trust # facility-tests' "$hba"; then
  $SUDO sed -i '1i host all all 127.0.0.1/32 trust # facility-tests' "$hba"
  $SUDO pg_ctlcluster 15 main reload >/dev/null 2>&1 || true
fi
pg_lsclusters -h | awk '$1==15 && $2=="main"' | grep -q online || $SUDO pg_ctlcluster 15 main start
for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE test"

# The project, in its own virtual environment.
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'

.venv/bin/ruff check .
.venv/bin/ruff format --check .
FACILITY_TEST_MQTT_PORT="$MQTT_PORT" FACILITY_TEST_PG_URL="$PG_URL" \
  .venv/bin/python -m pytest "$@"
