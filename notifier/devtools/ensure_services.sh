#!/usr/bin/env bash
# Make sure PostgreSQL, RabbitMQ and Redis answer on their local default ports.
# Starts them where installed but stopped; installs them with apt-get where
# missing and possible (root on Debian/Ubuntu); otherwise says what is missing.
set -u

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { # port seconds
  for _ in $(seq 1 "$2"); do answers "$1" && return 0; sleep 1; done
  return 1
}
can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
APT_UPDATED=0
apt_install() {
  can_apt || return 1
  if [ "$APT_UPDATED" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
missing=()

# PostgreSQL ------------------------------------------------------------------
if ! answers 5432; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "PostgreSQL is not installed; installing it (apt-get install postgresql)..."
    apt_install postgresql || true
  fi
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
    if [ -n "$ver" ]; then
      echo "Starting PostgreSQL $ver..."
      pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null || pg_ctlcluster "$ver" main start || true
    fi
  fi
  wait_for 5432 30 || missing+=("PostgreSQL on 127.0.0.1:5432 (Debian: apt-get install postgresql)")
fi

# Redis -------------------------------------------------------------------------
if ! answers 6379; then
  command -v redis-server >/dev/null 2>&1 || { echo "Redis is not installed; installing it..."; apt_install redis-server || true; }
  if command -v redis-server >/dev/null 2>&1; then
    echo "Starting Redis..."
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/notifier.log >/dev/null 2>&1 \
      || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  fi
  wait_for 6379 15 || missing+=("Redis on 127.0.0.1:6379 (Debian: apt-get install redis-server)")
fi

# RabbitMQ ----------------------------------------------------------------------
if ! answers 5672; then
  command -v rabbitmq-server >/dev/null 2>&1 || { echo "RabbitMQ is not installed; installing it..."; apt_install rabbitmq-server || true; }
  if command -v rabbitmq-server >/dev/null 2>&1; then
    echo "Starting RabbitMQ (this takes a few seconds)..."
    rabbitmq-server -detached >/dev/null 2>&1 || true
  fi
  wait_for 5672 90 || missing+=("RabbitMQ on 127.0.0.1:5672 (Debian: apt-get install rabbitmq-server)")
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "notifier needs these services, which could not be started:" >&2
  for m in "${missing[@]}"; do echo "  - $m" >&2; done
  exit 1
fi

# Management plugin (Flower's broker tab, queue depths in /metrics).
if command -v rabbitmq-plugins >/dev/null 2>&1 && ! answers 15672; then
  rabbitmq-plugins enable --quiet rabbitmq_management >/dev/null 2>&1 || true
fi
# Test vhosts: `make test` passes their names.
for vhost in "$@"; do
  if command -v rabbitmqctl >/dev/null 2>&1; then
    rabbitmqctl -q list_vhosts 2>/dev/null | grep -qx "$vhost" || rabbitmqctl -q add_vhost "$vhost" >/dev/null
    rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*' >/dev/null
  fi
done
exit 0
