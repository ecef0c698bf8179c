#!/usr/bin/env bash
# Make sure PostgreSQL, MariaDB and Redis answer on their standard local ports for the tests.
# Uses them where they answer; starts any that are installed but down; installs them with apt
# where it can (root on Debian/Ubuntu); otherwise says exactly what is missing and fails.
# The tests never silently skip for want of a service.
set -uo pipefail

can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
apt_install() {
  can_apt || return 1
  [ -n "${_APT_UPDATED:-}" ] || { apt-get update -qq >/dev/null; _APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done
  return 1
}
missing=()

# --- Redis (6379) ---
if ! port_open 6379; then
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server || true
  if command -v redis-server >/dev/null 2>&1; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null 2>&1 || \
      redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  fi
  wait_port 6379 || missing+=("Redis on 127.0.0.1:6379 (install: apt-get install redis-server)")
fi

# --- PostgreSQL (5432) ---
if ! port_open 5432; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql && for hba in /etc/postgresql/*/main/pg_hba.conf; do
      # tests connect as postgres over TCP without a password, as on the project's machines
      sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    done
  fi
  if ls /etc/postgresql/*/main >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start >/dev/null 2>&1 || true
  fi
  wait_port 5432 || missing+=("PostgreSQL on 127.0.0.1:5432 with trust auth for user postgres (install: apt-get install postgresql)")
fi

# --- MariaDB (3306) ---
if ! port_open 3306; then
  if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
    apt_install mariadb-server || true
    fresh_mariadb=1
  fi
  if [ -x /usr/sbin/mariadbd ]; then
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd >/dev/null 2>&1 || \
      (/usr/sbin/mariadbd --user=mysql >/dev/null 2>&1 &)
  fi
  if wait_port 3306; then
    if [ -n "${fresh_mariadb:-}" ]; then
      # tests connect as root over TCP without a password, as on the project's machines
      mariadb -uroot -e "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD(''); \
        CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED BY ''; GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;" || true
    fi
  else
    missing+=("MariaDB on 127.0.0.1:3306, user root without password (install: apt-get install mariadb-server)")
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "error: the test suite needs these services and they could not be started:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi
echo "services: PostgreSQL, MariaDB and Redis answer on 127.0.0.1"
