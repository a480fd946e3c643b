#!/usr/bin/env bash
# Set up everything and run dbpilot with a 3-node demo cluster on this machine.
# Starts Redis (if none answers), the ASGI server, one Celery worker per queue and two beats; creates a demo
# tenant, user and token; provisions the demo cluster (1 primary + 2 semi-sync replicas) through the API
# with the local provider and follows its job; prints the portal URL, the login and the token. Ctrl-C
# stops everything it started (the cluster's servers stop and keep their data: the next run starts them
# again). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Everything the demo writes (the token, the logs) is readable by its owner only.
umask 077

export DEBUG=${DEBUG:-1}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
PORT=${DBPILOT_PORT:-8000}
export DBPILOT_WEB_PORTS=${DBPILOT_WEB_PORTS:-$PORT}
RUN=var/demo
mkdir -p "$RUN"
chmod 700 "$RUN"
pids=()

stop_all() {
  trap "" INT TERM; trap - EXIT  # a second Ctrl-C must not cut the clean-up short
  echo; echo "demo: stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  .venv/bin/python manage.py local_servers stop >/dev/null 2>&1 || true
  [ -n "${REDIS_STARTED:-}" ] && redis-cli -u "$REDIS_URL" shutdown nosave >/dev/null 2>&1 || true
  echo "demo: stopped"
}
trap stop_all INT TERM EXIT

if ! redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1; then
  redis_port=$(.venv/bin/python -c "import urllib.parse,os;print(urllib.parse.urlparse(os.environ['REDIS_URL']).port or 6379)")
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --dir "$RUN" --logfile "$PWD/$RUN/redis.log" >/dev/null
  REDIS_STARTED=1
  for _ in $(seq 50); do redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

# A previous run's servers (their data kept) start again, read-only; dbpilot makes the primary writable.
.venv/bin/python manage.py local_servers start >/dev/null

echo "demo: starting the web server, workers and beat"
.venv/bin/daphne -b 127.0.0.1 -p "$PORT" controlplane.asgi:application > "$RUN/web.log" 2>&1 & pids+=($!)
for queue in ticks ha long default; do
  .venv/bin/celery -A controlplane worker -Q "$queue" -n "$queue@%h" --concurrency 2 --loglevel INFO \
    > "$RUN/worker-$queue.log" 2>&1 & pids+=($!)
done
# Two beats: one sends the schedule (it holds a lease in Redis), the other stands by to take over.
for beat in 1 2; do
  .venv/bin/celery -A controlplane beat --loglevel INFO > "$RUN/beat-$beat.log" 2>&1 & pids+=($!)
done

password=${DBPILOT_DEMO_PASSWORD:-demo-password-1}
token=$(.venv/bin/python manage.py create_tenant demo --team ops --user demo@example.com --password "$password" --token-scope admin | tail -n 1)
install -m 600 /dev/null "$RUN/token"
echo "$token" > "$RUN/token"

for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/api/schema/" 2>/dev/null && break; sleep 0.2; done
.venv/bin/python scripts/demo_register.py "http://127.0.0.1:$PORT" "$token"

cat <<TXT

dbpilot is running.
  Portal:   http://127.0.0.1:$PORT/
  Login:    demo@example.com / $password
  Token:    $token
  Try:      curl -H "Authorization: Bearer $token" http://127.0.0.1:$PORT/api/v1/clusters/
  Logs:     $RUN/
Press Ctrl-C to stop everything.
TXT
wait
