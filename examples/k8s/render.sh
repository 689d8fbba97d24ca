#!/usr/bin/env bash
# Prints the ServiceAccount and CronJob of examples/k8s/epic-audit-cronjob.yaml
# once per environment named, for `kubectl apply -f -`.
#
# Usage: examples/k8s/render.sh ENV [ENV ...]
#   e.g. examples/k8s/render.sh prod | kubectl -n epic-audit apply -f -
# Each ENV must be an environment of your epic-audit.toml (letters, digits,
# '-' and '_'; Kubernetes names take it lower-cased with '_' as '-').
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
[ $# -gt 0 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
first=1
for env in "$@"; do
  case "$env" in
    ''|*[!A-Za-z0-9_-]*) echo "render.sh: '$env' is not an environment name" >&2; exit 2 ;;
  esac
  name="$(printf '%s' "$env" | tr 'A-Z_' 'a-z-')"
  [ $first -eq 1 ] || echo "---"
  first=0
  echo "# epic-audit for the environment $env (examples/k8s/render.sh; read epic-audit-cronjob.yaml for what it needs)"
  # The template's comments are left out; `--env` gets the environment as
  # epic-audit.toml names it, object names the Kubernetes form.
  sed -e '/^#/d' -e "s/^\( *\)- __ENV__\$/\1- $env/" -e "s/__ENV__/$name/g" "$here/epic-audit-cronjob.yaml"
done
