#!/usr/bin/env bash
# Checks the deployment files, then runs every test of the workspace against real Redis and
# RabbitMQ (installed and started if needed). `--features system-tests` turns on the tests that
# need Redis, RabbitMQ, redis-server/rabbitmq-server, root (live capture on lo), promtool or
# Prometheus; plain `cargo test` ignores them, naming what each needs. With the feature, a missing
# tool or privilege fails a test instead of skipping it.
# Tests that read ../shared/data (the reference corpus beside the repository) skip with a notice
# when it is absent; in CI (CI=true) its absence is an error.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh test
# The Dockerfile, compose, Prometheus and Kubernetes files, offline (a few seconds).
scripts/check-deploy.sh
cargo test --workspace --all-targets --locked --no-fail-fast --features system-tests "$@"
