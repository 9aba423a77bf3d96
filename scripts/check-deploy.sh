#!/usr/bin/env bash
# Checks the deployment files offline and fails on any error (scripts/test.sh runs it):
#   Dockerfile                    hadolint (.hadolint.yaml)
#   deploy/compose.yml            `docker compose config` (or docker-compose) with every profile,
#                                 then the security and start-up rules of scripts/validate-compose.py
#   deploy/prometheus/*.yml       promtool check config
#   deploy/k8s, deploy/k8s-monitoring, deploy/k8s/jobs
#                                 rendered by `kubectl kustomize`, then scripts/validate-k8s.py:
#                                 strict Kubernetes schemas, PodMonitor structure, references
#   the validators themselves     each must reject its broken fixture in scripts/testdata with
#                                 exactly the expected number of errors
# A missing tool (docker-compose without root, promtool, kubectl) is skipped with a notice; in CI
# (CI=true) it is an error. Without kubectl the manifests are still validated, file by file.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh deploy
# Keep in step with scripts/ensure-deps.sh.
tools_dir=${NETPIPE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/netpipe/deploy-tools}
py=$tools_dir/bin/python
k8s_versions=(-k 1.29.0 -k 1.33.0)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

failed=()
fail() { echo "check-deploy: FAILED: $*" >&2; failed+=("$1"); }
missing_tool() {
  if [ "${CI:-}" = true ]; then
    fail "$1 is not installed"
  else
    echo "check-deploy: notice: $1 is not installed, $2 skipped" >&2
  fi
}
# expect_errors NAME COUNT COMMAND...: COMMAND must fail, printing exactly COUNT "ERROR " lines.
expect_errors() {
  local name=$1 want=$2 out status got
  shift 2
  status=0
  out=$("$@" 2>&1) || status=$?
  got=$(grep -c '^ERROR ' <<<"$out" || true)
  if [ "$status" -eq 0 ] || [ "$got" -ne "$want" ]; then
    printf '%s\n' "$out" >&2
    fail "$name: exit $status with $got errors, expected a failure with $want"
  fi
}

# --- Dockerfile
"$tools_dir/bin/hadolint" --no-color Dockerfile || fail "hadolint Dockerfile"

# --- deploy/compose.yml
compose=()
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
fi
if [ ${#compose[@]} -gt 0 ]; then
  for profiles in "" demo predict monitoring tools rabbitmq "demo monitoring tools rabbitmq"; do
    args=(-f deploy/compose.yml)
    for profile in $profiles; do args+=(--profile "$profile"); done
    "${compose[@]}" "${args[@]}" config -q || fail "compose config ${profiles:-(no profile)}"
  done
  if "${compose[@]}" "${args[@]}" config >"$work/compose.yml"; then
    "$py" scripts/validate-compose.py "$work/compose.yml" || fail "compose rules"
  fi
else
  missing_tool "docker-compose" "deploy/compose.yml config"
fi
expect_errors "validate-compose.py on its broken fixture" 6 \
  "$py" scripts/validate-compose.py scripts/testdata/compose-unsafe.yml

# --- Prometheus scrape configuration
if command -v promtool >/dev/null 2>&1; then
  promtool check config deploy/prometheus/prometheus.yml >"$work/promtool.log" 2>&1 \
    || { cat "$work/promtool.log" >&2; fail "promtool check config"; }
else
  missing_tool "promtool" "deploy/prometheus/prometheus.yml"
fi

# --- Kubernetes
if command -v kubectl >/dev/null 2>&1; then
  kubectl kustomize deploy/k8s >"$work/k8s.yaml" || fail "kubectl kustomize deploy/k8s"
  kubectl kustomize deploy/k8s-monitoring >"$work/k8s-monitoring.yaml" \
    || fail "kubectl kustomize deploy/k8s-monitoring"
  "$py" scripts/validate-k8s.py "${k8s_versions[@]}" "$work/k8s.yaml" || fail "deploy/k8s"
  "$py" scripts/validate-k8s.py "${k8s_versions[@]}" "$work/k8s-monitoring.yaml" \
    deploy/k8s/jobs/*.yaml || fail "deploy/k8s-monitoring and deploy/k8s/jobs"
else
  missing_tool "kubectl" "kustomize rendering"
  files=()
  for f in deploy/k8s/*.yaml deploy/k8s-monitoring/*.yaml deploy/k8s/jobs/*.yaml; do
    case $f in */kustomization.yaml) ;; *) files+=("$f") ;; esac
  done
  "$py" scripts/validate-k8s.py "${k8s_versions[@]}" "${files[@]}" || fail "deploy/k8s files"
fi
expect_errors "validate-k8s.py on its broken fixture" 8 \
  "$py" scripts/validate-k8s.py -k 1.29.0 scripts/testdata/k8s-invalid.yaml

if [ ${#failed[@]} -gt 0 ]; then
  echo "check-deploy: ${#failed[@]} check(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "check-deploy: Dockerfile, compose, Prometheus and Kubernetes files are valid"
