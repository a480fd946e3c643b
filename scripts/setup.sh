#!/usr/bin/env bash
# Set up dbpilot on Debian 12: Debian packages (only those missing), the virtualenv, the project, migrations.
# Safe to run again. Usage: scripts/setup.sh [--tests]
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
[ "${1:-}" = "--tests" ] && want_tests=1

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: run as root or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi

packages=(python3 python3-venv python3-dev build-essential mariadb-server mariadb-backup mariadb-client
          redis-server haproxy pdns-server pdns-backend-sqlite3 iproute2 nftables procps curl)
if [ "$want_tests" = 1 ]; then
  packages+=(postgresql dnsutils chromium nodejs npm prometheus redis-sentinel)
fi
missing=()
for p in "${packages[@]}"; do
  # nodejs from another source (e.g. nodesource) provides npm itself.
  if [ "$p" = npm ] && command -v npm >/dev/null; then continue; fi
  if [ "$p" = nodejs ] && command -v node >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  # Nothing here runs systemd: keep apt from trying to start the services it installs.
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  $SUDO rm -f /usr/sbin/policy-rc.d
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.dbpilot-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  touch "$stamp"
fi
if [ "$want_tests" = 1 ] && [ -f frontend/package.json ] && [ ! -d frontend/node_modules ]; then
  (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
fi
DEBUG=${DEBUG:-1} .venv/bin/python manage.py migrate --noinput -v 0
echo "setup: done"
