#!/usr/bin/env bash
# Soak test of `unigemma serve` (docs/server.md "Load generator and soak test"): starts the server on a
# small model, drives it with bench/load_gen for --duration seconds (cycles of mixed concurrency, plain
# and agent-like multi-turn traffic with a shared prefix, ~10% of streams hung up mid-stream, ~5% bad
# input), samples the server's RSS (/proc/PID/status) and the /metrics KV gauges every --sample-s
# seconds, and at the end reports requests, errors, RSS at start / after warm-up / end with its slope,
# and whether the KV gauges return to idle (no live sequence holds KV; only the prefix cache may).
# The KV budget is fixed and small, and the warm-up lasts until the prefix cache has filled it, so cache
# growth is not mistaken for a leak; RSS after warm-up and at the end are both taken while idle.
#
# Exit 0 = pass. Non-zero: an error on a valid request, a bad request not answered with a 4xx, KV held
# or sequences running once idle, RSS growth after warm-up above --max-growth-mb, or a server that did
# not exit cleanly on SIGTERM.
#
#   scripts/bench/soak.sh                                  # 10 min on a fresh tiny model, build/load
#   scripts/bench/soak.sh --duration 60 --build build/release --model /tmp/bench14 --out /tmp/soak
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
duration=600 sample_s=10 warmup_s="" max_growth_mb=32 build="$repo_root/build/load" model="" out=/tmp/unigemma-soak
kv_budget=$((64 << 20)) level_s=15 max_tokens=32
usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  cat <<EOF
Options: --duration S ($duration)  --warmup-s S (20% of the duration, at least 60)  --sample-s S ($sample_s)
         --max-growth-mb MB ($max_growth_mb)  --build DIR (build/load)  --model DIR (a fresh tiny model)
         --out DIR ($out)  --kv-budget-bytes N ($kv_budget: fixed, so the prefix cache fills during warm-up)
         --level-s S ($level_s: seconds per concurrency level)  --max-tokens N ($max_tokens)
EOF
}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --warmup-s) warmup_s="$2"; shift 2 ;;
    --sample-s) sample_s="$2"; shift 2 ;;
    --max-growth-mb) max_growth_mb="$2"; shift 2 ;;
    --build) build="$(cd "$2" && pwd)"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --kv-budget-bytes) kv_budget="$2"; shift 2 ;;
    --level-s) level_s="$2"; shift 2 ;;
    --max-tokens) max_tokens="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "soak: unknown option $1 (--help)" >&2; exit 2 ;;
  esac
done
[[ -n "$warmup_s" ]] || warmup_s=$(( duration / 5 > 60 ? duration / 5 : 60 ))
bin="$build/unigemma" load_gen="$build/bench/load_gen"
for f in "$bin" "$load_gen"; do
  [[ -x "$f" ]] || { echo "soak: $f missing: build it (ninja -C $build unigemma load_gen; load_gen needs -DUNIGEMMA_BENCH=ON)" >&2; exit 2; }
done
command -v curl >/dev/null || { echo "soak: curl is required" >&2; exit 2; }
command -v python3 >/dev/null || { echo "soak: python3 is required (for the summary)" >&2; exit 2; }
mkdir -p "$out"
rm -f "$out"/run_*.json "$out"/run_*.txt "$out/samples.csv" "$out/warmup_t"

if [[ -z "$model" ]]; then
  tok="$repo_root/build/test_assets/tokenizer/tokenizer.json"
  [[ -f "$tok" ]] || { echo "soak: $tok missing: run scripts/fetch_tokenizer.sh (or pass --model DIR)" >&2; exit 2; }
  model="$out/tiny"
  "$bin" init-random --preset tiny --seed 1 --out "$model" --tokenizer "$tok" >/dev/null
fi

"$bin" serve --model "$model" --port 0 --max-running 64 --kv-budget-bytes "$kv_budget" \
  --shutdown-grace-s 10 >"$out/server.out" 2>"$out/server.log" &
server_pid=$!
sampler_pid=""
cleanup() {
  [[ -n "$sampler_pid" ]] && kill "$sampler_pid" 2>/dev/null || true
  kill -0 "$server_pid" 2>/dev/null && kill -KILL "$server_pid" 2>/dev/null || true
}
trap cleanup EXIT
url=""
for _ in $(seq 1 600); do
  url=$(grep -o 'on http://127\.0\.0\.1:[0-9]*' "$out/server.log" | head -1 | sed 's/^on //') || true
  [[ -n "$url" ]] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "soak: the server exited:" >&2; cat "$out/server.log" >&2; exit 1; }
  sleep 0.2
done
[[ -n "$url" ]] || { echo "soak: the server did not start in 120 s" >&2; exit 1; }
echo "soak: server pid $server_pid at $url, model $model, ${duration} s, warm-up ${warmup_s} s, $(nproc) cores"

# One sample: seconds since start, RSS KiB, and the KV / sequence gauges.
t_start=$(date +%s)
sample() {
  local rss m
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status" 2>/dev/null || echo 0)
  m=$(curl -s --max-time 5 "$url/metrics" || true)
  g() { awk -v n="$1" '$1 == n {print $2; f=1} END {if (!f) print "nan"}' <<<"$m"; }
  last_t=$(( $(date +%s) - t_start ))
  echo "$last_t,$rss,$(g unigemma_kv_cache_used_bytes),$(g unigemma_kv_cache_sequences_bytes),$(g unigemma_prefix_cache_bytes),$(g unigemma_prefix_cache_entries),$(g unigemma_sequences_running),$(g unigemma_queue_depth),$(g unigemma_active_streams)" >>"$out/samples.csv"
}
echo "t_s,rss_kib,kv_used_bytes,kv_sequences_bytes,prefix_cache_bytes,prefix_cache_entries,running,waiting,active_streams" >"$out/samples.csv"
sample
( while kill -0 "$server_pid" 2>/dev/null; do sleep "$sample_s"; sample; done ) &
sampler_pid=$!

# Load: alternate plain traffic and agent-like conversations over a shared system prompt; every cycle
# runs concurrency 1, 8, 32, 64 for --level-s seconds each. run_cycles UNTIL_S [full]: cycles until
# UNTIL_S seconds since the start (with "full": also until the prefix cache holds 90% of the budget,
# at most until half the duration, so that the warm-up ends with the cache full).
cycle=0 fatal=0
elapsed() { echo $(( $(date +%s) - t_start )); }
gauge() { curl -s --max-time 5 "$url/metrics" | awk -v n="$1" '$1 == n {v = int($2)} END {print v + 0}'; }
run_cycles() {
  local until_s="$1" full="${2:-}"
  while (( $(elapsed) < until_s )) || { [[ -n "$full" ]] && (( $(elapsed) < duration / 2 )) &&
        (( $(gauge unigemma_kv_cache_used_bytes) * 10 < kv_budget * 9 )); }; do
    local left=$(( duration - $(elapsed) ))
    (( left > 4 )) || left=4
    local per=$(( left / 4 < level_s ? left / 4 : level_s ))
    local common=(--url "$url" --concurrency 1,8,32,64 --duration "$per" --max-tokens "$max_tokens" --warmup 0
                  -q --cancel-fraction 0.1 --bad-fraction 0.05 --json-out "$out/run_$cycle.json")
    local traffic=(--prompt-words 48)
    (( cycle % 2 == 0 )) || traffic=(--prompt-words 24 --prefix-words 200 --turns 4)
    local rc=0
    "$load_gen" "${common[@]}" "${traffic[@]}" >"$out/run_$cycle.txt" 2>&1 || rc=$?
    if (( rc == 2 )); then echo "soak: load_gen failed:" >&2; cat "$out/run_$cycle.txt" >&2; fatal=1; return; fi
    echo "soak: cycle $cycle ($(elapsed) s): $(grep -c '^ *[0-9]' "$out/run_$cycle.txt") levels, rc $rc"
    cycle=$((cycle + 1))
  done
}
# Waits until nothing runs, waits or streams, then takes a sample.
idle_sample() {
  for _ in $(seq 1 60); do
    local busy=$(( $(gauge unigemma_sequences_running) + $(gauge unigemma_queue_depth) + $(gauge unigemma_active_streams) ))
    (( busy == 0 )) && break
    sleep 0.5
  done
  sleep 1
  sample
}

run_cycles "$warmup_s" full
(( fatal )) || { idle_sample; echo "$last_t" >"$out/warmup_t"; echo "soak: warm-up done ($(elapsed) s, idle sample taken)"; }
(( fatal )) || run_cycles "$duration"
idle_sample
kill "$sampler_pid" 2>/dev/null || true
sampler_pid=""

kill -TERM "$server_pid"
server_rc=0
wait "$server_pid" || server_rc=$?

python3 - "$out" "$warmup_s" "$max_growth_mb" "$server_rc" "$fatal" "$duration" <<'EOF'
import csv, glob, json, sys
out, warmup_s, max_growth_mb, server_rc, fatal, duration = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
tot = dict(ok=0, errors=0, cancelled=0, rejected=0)
samples_err = []
for f in sorted(glob.glob(f"{out}/run_*.json")):
    for lv in json.load(open(f))["levels"]:
        for k in tot: tot[k] += lv[k]
        samples_err += [e for e in lv["error_samples"] if e not in samples_err]
rows = list(csv.DictReader(open(f"{out}/samples.csv")))
t = [float(r["t_s"]) for r in rows]; rss = [float(r["rss_kib"]) / 1024 for r in rows]
try:
    warm_t = float(open(f"{out}/warmup_t").read())
except (OSError, ValueError):
    warm_t = warmup_s
after = [(x, y) for x, y in zip(t, rss) if x >= warm_t]
warm = after[0] if after else (t[-1], rss[-1])  # the idle sample taken when the warm-up ended
slope = 0.0
if len(after) >= 3:
    mx = sum(x for x, _ in after) / len(after); my = sum(y for _, y in after) / len(after)
    den = sum((x - mx) ** 2 for x, _ in after)
    slope = 60 * sum((x - mx) * (y - my) for x, y in after) / den if den else 0.0
growth = rss[-1] - warm[1]
idle = rows[-1]
num = lambda k: float(idle[k]) if idle[k] != "nan" else float("nan")
idle_ok = (num("kv_sequences_bytes") == 0 and num("running") == 0 and num("waiting") == 0
           and num("active_streams") == 0 and num("kv_used_bytes") == num("prefix_cache_bytes"))
fails = []
if fatal: fails.append("load_gen could not run")
if tot["errors"]: fails.append(f"{tot['errors']} errors")
if growth > max_growth_mb: fails.append(f"RSS grew {growth:.1f} MiB after warm-up (limit {max_growth_mb:.0f})")
if not idle_ok: fails.append("KV / sequence gauges not back to idle")
if server_rc != 0: fails.append(f"server exit code {server_rc} after SIGTERM")
summary = dict(duration_s=duration, requests=sum(tot.values()), **tot, error_samples=samples_err[:5],
               rss_mib=dict(start=rss[0], after_warmup=warm[1], warmup_at_s=warm[0], end=rss[-1], max=max(rss),
                            slope_after_warmup_mib_per_min=slope, growth_after_warmup=growth),
               idle=dict(kv_used_bytes=num("kv_used_bytes"), kv_sequences_bytes=num("kv_sequences_bytes"),
                         prefix_cache_bytes=num("prefix_cache_bytes"), prefix_cache_entries=num("prefix_cache_entries"),
                         running=num("running"), waiting=num("waiting"), active_streams=num("active_streams"),
                         back_to_idle=idle_ok),
               server_exit_code=server_rc, samples=len(rows), passed=not fails, failures=fails)
json.dump(summary, open(f"{out}/soak_summary.json", "w"), indent=2)
print(f"requests {summary['requests']}: ok {tot['ok']}, errors {tot['errors']}, cancelled mid-stream {tot['cancelled']}, "
      f"bad input rejected {tot['rejected']}")
for e in samples_err[:5]: print("  error:", e)
print(f"RSS MiB: start {rss[0]:.1f}, after warm-up ({warm[0]:.0f} s) {warm[1]:.1f}, end {rss[-1]:.1f}, max {max(rss):.1f}; "
      f"slope after warm-up {slope:+.3f} MiB/min, growth {growth:+.1f} MiB")
print(f"idle: KV used {num('kv_used_bytes'):.0f} B = prefix cache {num('prefix_cache_bytes'):.0f} B "
      f"({num('prefix_cache_entries'):.0f} entries), sequences {num('kv_sequences_bytes'):.0f} B, running {num('running'):.0f}, "
      f"waiting {num('waiting'):.0f}, streams {num('active_streams'):.0f}: {'back to idle' if idle_ok else 'NOT idle'}")
print(f"server exit code after SIGTERM: {server_rc}")
print("PASS" if not fails else "FAIL: " + "; ".join(fails))
print(f"(samples: {out}/samples.csv, summary: {out}/soak_summary.json)")
sys.exit(0 if not fails else 1)
EOF
