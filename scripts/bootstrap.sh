#!/usr/bin/env bash
# Create .venv and install the project's requirements on a fresh machine.
#   scripts/bootstrap.sh        runtime requirements (make run)
#   scripts/bootstrap.sh dev    runtime + test/tooling requirements (make test, CI)
# Needs Python 3.11 and a C compiler. mysqlclient also needs the MariaDB client headers: they are
# installed with apt when this runs as root on Debian/Ubuntu; otherwise it says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
want=${1:-runtime}
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else 1)' 2>/dev/null; then
  echo "error: Python 3.11+ is required (found: $("$PYTHON" --version 2>&1 || echo none)). Set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

have_mysql_headers() {
  command -v pkg-config >/dev/null 2>&1 && pkg-config --exists mysqlclient 2>/dev/null || \
    { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists libmariadb 2>/dev/null; } || \
    { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists mariadb 2>/dev/null; }
}
if ! have_mysql_headers && ! "$VENV/bin/python" -c 'import MySQLdb' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing MariaDB client headers for mysqlclient (apt)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      pkg-config default-libmysqlclient-dev >/dev/null
  else
    echo "error: mysqlclient needs the MariaDB/MySQL client headers and pkg-config." >&2
    echo "       Debian/Ubuntu: sudo apt-get install pkg-config default-libmysqlclient-dev" >&2
    echo "       macOS: brew install pkg-config mysql-client" >&2
    exit 1
  fi
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
reqs=requirements.txt
[ "$want" = dev ] && reqs=requirements-dev.txt
stamp="$VENV/.installed-$want"
if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ] || [ "$reqs" -nt "$stamp" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  "$VENV/bin/python" -m pip install -q -r "$reqs" 2>&1 | grep -v '^WARNING: Location' || true
  "$VENV/bin/python" -c 'import django, celery, MySQLdb, psycopg' # fail here, not later, if the install broke
  touch "$stamp"
fi
