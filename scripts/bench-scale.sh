#!/usr/bin/env bash
# What a full audit costs a cluster that holds 10k, 1M and 5M session keys
# (issue #40), on one throw-away lab on loopback (127.0.1.1-6, port $PORT,
# default 6479; see bench-common.sh), in one run:
#
#   bash scripts/bench-scale.sh            # SIZES="10000 1000000 5000000"
#   POLICY=DIR bash scripts/bench-scale.sh # audit with the policy in DIR
#
# The lab is filled as the session manager writes (HSET of three fields,
# then EXPIRE 1800) with `epic-audit-lab fill --tagged`: one hash tag per
# master, so that a redis-benchmark aimed at a master reads only keys that
# exist there. Per size:
#   audit   `epic-audit run` alone, of every check (the lab's AWS emulator
#           and Prometheus included; PERF-001's latency probe puts its own
#           load on the cluster) and of DATA-005 only: wall, audit CPU
#           (user+sys), peak RSS, CPU all six redis-servers used meanwhile
#           (/proc utime+stime, less their idle rate), DATA-005's scan per
#           master (keys examined / seconds, from the evidence) and the
#           verdict with the checks that did not pass (the bench
#           environment accepts no server build, so PATCH-001 fails).
#   load    the application workload alone: on each master, redis-benchmark
#           over TLS as app_user, HGETALL session:{tag}:<random key>, 2
#           connections, no pipelining; p50/p99/p99.9 in ms (the worst of
#           the three masters; p99.9 is redis-benchmark's first
#           histogram step at or above 99.9%). redis-benchmark 7.0 cannot
#           hold a fixed rate: it is closed-loop, so the requests are sized
#           to last as long as the audit (calibrated per size).
#   load+audit  the same workload, sized to outlast the audit (at least
#           5 s), with the audit started 1 s into it (its server CPU would
#           include the workload: not shown).
# Everything shares this machine's cores: the figures include that
# contention, as a laptop auditing a cluster would not. Loopback lab only.
set -euo pipefail
sizes=${SIZES:-"10000 1000000 5000000"}
source "$(dirname "$0")/bench-common.sh"
bench_setup
"$labbin" up --port "$port" >/dev/null
bench_config
pids=$(python3 -c "import json,sys; print(' '.join(str(n['pid']) for n in json.load(open(sys.argv[1]))['nodes']))" "$lab/lab.json")
ticks=$(getconf CLK_TCK)
server_ticks() { local t=0; for p in $pids; do read -r -a f <"/proc/$p/stat"; t=$((t + f[13] + f[14])); done; echo "$t"; }
app_pass=$(cat "$lab/secrets/app_user.pass")
tls=(--tls --cacert "$lab/pki/ca.crt" --cert "$lab/pki/client.crt" --key "$lab/pki/client.key")

# The servers' own idle CPU (cron, replication pings), per second.
t0=$(server_ticks); sleep 5; idle_per_s=$(awk -v d=$(($(server_ticks) - t0)) 'BEGIN{print d/5}')

audit() { # out-dir [run args] -> "wall user sys rss_kb server_cpu_s"
  local before after dir=$1
  shift
  before=$(server_ticks)
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$bin" run --env bench --config "$work/epic-audit.toml" \
    --unsigned --out "$dir" ${POLICY:+--policy "$POLICY"} "$@" >"$dir.stdout" 2>&1 || true
  after=$(server_ticks)
  read -r wall u s rss < <(tail -1 "$work/time")
  echo "$wall $u $s $rss $(awk -v d=$((after - before)) -v t="$ticks" -v i="$idle_per_s" -v w="$wall" 'BEGIN{x=(d-i*w)/t; if(x<0)x=0; printf "%.2f", x}')"
}

percentiles() { # redis-benchmark outputs -> "p50 p99 p99.9 rps" (worst master; rps summed)
  python3 - "$@" <<'PY'
import re, sys
worst = [0.0, 0.0, 0.0]
rps = 0.0
for f in sys.argv[1:]:
    text = open(f).read()
    pts = [(float(p), float(v)) for p, v in re.findall(r"^\s*([\d.]+)% <= ([\d.]+) milliseconds", text, re.M)]
    for i, want in enumerate((50.0, 99.0, 99.9)):
        v = next((v for p, v in pts if p >= want), float("nan"))
        worst[i] = max(worst[i], v)
    m = re.search(r"throughput summary: ([\d.]+) requests per second", text)
    rps += float(m.group(1)) if m else 0
print("%.3f %.3f %.3f %.0f" % (worst[0], worst[1], worst[2], rps))
PY
}

load() { # requests-per-master per-master-keys name -> starts 3 redis-benchmarks, waits
  local n=$1 keys=$2 name=$3 m
  # redis-benchmark takes a password only as -a (it reads no REDISCLI_AUTH):
  # the lab's generated TEST-ONLY app_user password, on loopback.
  for m in 1 2 3; do
    redis-benchmark "${tls[@]}" -h "127.0.1.$m" -p "$port" --user app_user -a "$app_pass" \
      -c 2 -n "$n" -r "$keys" --precision 3 HGETALL "session:{${tags[$m]}}:__rand_int__" >"$work/$name-$m.out" 2>&1 &
  done
  wait
}

declare -A tags
row() { printf '%-9s %-16s %7s %9s %7s %10s %22s %8s  %s\n' "$@"; }
cpu() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a+b}'; }
# requests per master that last about as long as $1 seconds (at least 5)
# plus the second the audit starts after the load, from the calibration
# run's rate.
requests() { awk -v w="$1" -v c="$cal" 'BEGIN{if(w<5)w=5; print int(5000*(w+1)/c)}'; }
filled=0
row keys run wall_s audit_cpu rss_MB server_cpu "p50/p99/p99.9 ms" rps "DATA-005 scan per master: keys examined/seconds"
for size in $sizes; do
  add=$((size - filled))
  first=$(((filled + 2) / 3))
  out=$("$labbin" fill --tagged --keys "$add" --first "$first" 2>&1)
  while read -r _ m _ _ tag; do tags[$m]=${tag//[\{\}]/}; done < <(grep '^master ' <<<"$out")
  filled=$size
  per=$(((size + 2) / 3))
  sleep 5
  t0=$(date +%s.%N)
  load 5000 "$per" calib
  cal=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')
  for sel in all DATA-005; do
    only=(); [ "$sel" = all ] || only=(--only "$sel")
    read -r wall u s rss scpu <<<"$(audit "$work/audit-$size-$sel" "${only[@]}")"
    scan=$(python3 - "$work/audit-$size-$sel/evidence.json" <<'PY'
import json, sys
ev = json.load(open(sys.argv[1]))
c = [i["result"]["observation"] for i in ev["items"] if i["probe"] == "data.sessions" and "observation" in i["result"]]
print(" ".join("%d/%.1f" % (o["scanned"], o.get("cost", {}).get("elapsed_ms", 0) / 1000) for o in c))
PY
)
    verdict=$(python3 - "$work/audit-$size-$sel/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bad = ["%s %s" % (c["id"], c["outcome"]) for c in r["checks"] if c["outcome"] != "pass"]
print("%s (%d checks%s)" % (r["verdict"], len(r["checks"]), ": " + ", ".join(bad) if bad else ""))
PY
)
    n=$(requests "$wall")
    if [ "$sel" = all ]; then
      load "$n" "$per" alone
      read -r a50 a99 a999 arps <<<"$(percentiles "$work"/alone-*.out)"
      row "$size" "load alone" - - - - "$a50/$a99/$a999" "$arps" ""
    fi
    row "$size" "audit $sel" "$wall" "$(cpu "$u" "$s")" "$((rss / 1024))" "$scpu" - - "$scan; $verdict"
    load "$n" "$per" both &
    lp=$!
    sleep 1
    read -r bwall bu bs brss _ <<<"$(audit "$work/both-$size-$sel" "${only[@]}")"
    wait "$lp"
    read -r b50 b99 b999 brps <<<"$(percentiles "$work"/both-*.out)"
    row "$size" "load+audit $sel" "$bwall" "$(cpu "$bu" "$bs")" "$((brss / 1024))" - "$b50/$b99/$b999" "$brps" "$n requests per master"
  done
done
