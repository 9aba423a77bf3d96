#!/usr/bin/env bash
# Installs what netpipe needs to build and test (Debian packages, when run as root) and starts the
# brokers the tests use. Idempotent: does nothing that is already done.
#   scripts/ensure-deps.sh build     libpcap-dev only (enough to build and run netpipe)
#   scripts/ensure-deps.sh test      + redis-server, rabbitmq-server, promtool; starts Redis and RabbitMQ
set -euo pipefail
mode=${1:-build}

missing=()
need_pkg() { dpkg -s "$1" >/dev/null 2>&1 || missing+=("$1"); }
need_pkg libpcap-dev
need_pkg pkg-config
if [ "$mode" = test ]; then
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v rabbitmq-server >/dev/null 2>&1 || missing+=(rabbitmq-server)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "netpipe needs these Debian packages: ${missing[*]} (run as root, or install them: apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "netpipe needs a Rust toolchain (cargo); install it with rustup: https://rustup.rs" >&2
  exit 1
fi

[ "$mode" = test ] || exit 0

# Redis on 127.0.0.1:6379, nothing kept on disk.
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting redis-server on 127.0.0.1:6379" >&2
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/netpipe-redis.log
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
# RabbitMQ on 127.0.0.1:5672 (guest/guest).
if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  echo "starting rabbitmq-server on 127.0.0.1:5672" >&2
  RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 ERL_EPMD_ADDRESS=127.0.0.1 rabbitmq-server -detached >/dev/null 2>&1 || true
  rabbitmqctl await_startup --timeout 120 >/dev/null 2>&1 || true
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && break; sleep 0.5; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { echo "Redis is not reachable on 127.0.0.1:6379" >&2; exit 1; }
(exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null || { echo "RabbitMQ is not reachable on 127.0.0.1:5672" >&2; exit 1; }
