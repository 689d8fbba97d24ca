#!/usr/bin/env bash
# What one audit costs the audited cluster and the auditing host, for one or
# more builds of epic-audit interleaved on the same throw-away lab
# (127.0.1.1-6 on loopback, see bench-common.sh):
#
#   git worktree add /tmp/before 445f9d2 && (cd /tmp/before && cargo build --release)
#   bash scripts/bench-audit-cost.sh [--runs N] [--only AREAS] [--masters N] [BUILD...]
#
# BUILD is another epic-audit binary to compare; --masters 12 makes a
# 24-node scale lab (127.0.1.1-24, certificates issued at start, no AWS
# emulator; CLU-006 is skipped there since the policy documents 3 masters).
#
# The current checkout's release build is always measured last in each
# round. Per run: wall time, audit CPU (user+sys) and peak RSS of the
# epic-audit process, CPU used by all six redis-server processes meanwhile
# (/proc utime+stime), connections each node accepted (INFO stats
# total_connections_received, less this script's own INFO connection), and
# the ACL DRYRUN calls in the evidence. probe_s is the evidence's
# started_at to finished_at: the wall without process start, judging and
# writing the report (where this VM's occasional 0.1-0.2 s stalls land).
# cpu_floor is audit + server CPU over the machine's cores: the least wall
# that CPU allows with the servers on this machine (a wall near it is
# CPU-bound, not waiting).
# Default selection: the areas that talk to Redis (access, cluster, data,
# transport). Loopback lab only.
set -euo pipefail
runs=3
only=access,cluster,data,transport
masters=3
bins=()
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --masters) masters=$2; shift 2 ;;
    *) bins+=("$1"); shift ;;
  esac
done
source "$(dirname "$0")/bench-common.sh"
bench_setup
bench_config
bins+=("$bin")
nodes=$((2 * masters))
skip=CLU-008,CLU-009,CLU-010
[ "$masters" = 3 ] || skip=$skip,CLU-006
t0=$(date +%s.%N)
"$labbin" up --port "$port" --no-aws --masters "$masters" >/dev/null
echo "lab up: $masters masters + $masters replicas in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
pids=$(python3 -c "import json,sys; print(' '.join(str(n['pid']) for n in json.load(open(sys.argv[1]))['nodes']))" "$lab/lab.json")
admin_pass=$(cat "$lab/secrets/admin_user.pass")
ticks=$(getconf CLK_TCK)
server_ticks() { local t=0; for p in $pids; do read -r -a f <"/proc/$p/stat"; t=$((t + f[13] + f[14])); done; echo "$t"; }
conns() {
  for i in $(seq 1 "$nodes"); do
    REDISCLI_AUTH=$admin_pass redis-cli --tls --cacert "$lab/pki/ca.crt" --cert "$lab/pki/client.crt" \
      --key "$lab/pki/client.key" -h "127.0.1.$i" -p "$port" --user admin_user INFO stats 2>/dev/null |
      tr -d '\r' | awk -F: '/^total_connections_received:/ {print $2}'
  done | paste -sd' '
}
cores=$(nproc)
printf '%-44s %3s %7s %7s %9s %10s %9s %7s %14s %14s %8s\n' build run wall_s probe_s audit_cpu server_cpu cpu_floor rss_MB "conns/node" "full/node" dryrun
for r in $(seq 1 "$runs"); do
  for b in "${bins[@]}"; do
    sleep 3
    before_c=($(conns)); before_t=$(server_ticks)
    out="$work/run-$r-$(basename "$(dirname "$(dirname "$(dirname "$b")")")")-$RANDOM"
    /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$b" run --env bench --config "$work/epic-audit.toml" \
      --only "$only" --skip "$skip" --unsigned --out "$out" >/dev/null 2>&1 || true
    after_t=$(server_ticks); after_c=($(conns))
    read -r wall u s rss <"$work/time"
    per=()
    for i in $(seq 0 $((nodes - 1))); do per+=($(( after_c[i] - before_c[i] - 1 ))); done
    read -r dry full probe_s <<<"$(python3 -c "
import json,sys
from datetime import datetime
ev=json.load(open(sys.argv[1]+'/evidence.json'))
d=sum(i['result']['observation'].get('dryrun_calls',0) for i in ev['items'] if i['probe']=='acl' and 'observation' in i['result'])
h=ev.get('tls_handshakes',{})
f=[v['full'] for v in h.values()]
t=lambda k: datetime.fromisoformat(ev[k].replace('Z','')[:26])
print(d, '%d-%d' % (min(f),max(f)) if f else '?', '%.2f' % (t('finished_at')-t('started_at')).total_seconds())" "$out" 2>/dev/null || echo '? ? ?')"
    audit_cpu=$(awk -v a="$u" -v b="$s" 'BEGIN{printf "%.2f", a+b}')
    server_cpu=$(awk -v d=$((after_t - before_t)) -v t="$ticks" 'BEGIN{printf "%.2f", d/t}')
    printf '%-44s %3s %7s %7s %9s %10s %9s %7s %14s %14s %8s\n' "$(printf %s "$b" | tail -c 44)" "$r" "$wall" "$probe_s" \
      "$audit_cpu" "$server_cpu" "$(awk -v a="$audit_cpu" -v s="$server_cpu" -v c="$cores" 'BEGIN{printf "%.2f", (a+s)/c}')" \
      "$((rss / 1024))" \
      "$(printf '%s\n' "${per[@]}" | sort -n | sed -n '1p;$p' | paste -sd-)" "$full" "$dry"
  done
done
