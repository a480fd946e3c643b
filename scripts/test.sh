#!/usr/bin/env bash
# Set up everything and run dbpilot's whole test suite: unit, API, integration (real MariaDB, Redis,
# HAProxy, PowerDNS), the chaos suite (tests/chaos: beats, Redis Sentinel, PostgreSQL restarting; about 3
# minutes, `-m chaos` alone), frontend (Vitest) and browser tests on SQLite; then the API and job tests
# again on PostgreSQL. Starts its own Redis and PostgreSQL on private ports and stops them at the end.
# Safe to run again. Extra arguments go to the first pytest run (e.g. -k switchover).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests || exit 1

RUN=/tmp/dbpilot-test-services
mkdir -p "$RUN"
REDIS_PORT=${DBPILOT_TEST_REDIS_PORT:-6391}
PG_PORT=${DBPILOT_TEST_PG_PORT:-5441}
PG_DIR=$RUN/pg
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

cleanup() {
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  if [ -f "$PG_DIR/postmaster.pid" ]; then runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR" -m immediate stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || \
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --dir "$RUN" --logfile "$RUN/redis.log" --pidfile "$RUN/redis.pid" >/dev/null
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

start_postgres() {
  if [ ! -f "$PG_DIR/PG_VERSION" ]; then
    rm -rf "$PG_DIR"; mkdir -p "$PG_DIR"; chown postgres: "$PG_DIR"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DIR" -A trust -U postgres >/dev/null || return 1
  fi
  chown -R postgres: "$PG_DIR"
  # The server runs as postgres: its log and socket live in its own directory.
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR" -l "$PG_DIR/server.log" -w \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
}

export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export PYTHONUNBUFFERED=1
status=0

echo "== ruff (lint and format), lint-imports (layers, forbidden imports, no cycles), mypy (the domain core, the job state)"
.venv/bin/ruff check . || status=1
.venv/bin/ruff format --check . || status=1
.venv/bin/lint-imports || status=1
DEBUG=1 .venv/bin/mypy || status=1

echo "== pytest (SQLite control-plane DB)"
.venv/bin/pytest -q "$@" || status=1

if [ -f frontend/package.json ]; then
  echo "== frontend unit tests (Vitest)"
  (cd frontend && npm test --silent) || status=1
fi

echo "== pytest: API and job tests on PostgreSQL"
if start_postgres; then
  DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/dbpilot" .venv/bin/pytest -q -m "api or jobs" tests/api tests/integration || status=1
else
  echo "could not start PostgreSQL (see $PG_DIR/server.log)"; status=1
fi
exit $status
