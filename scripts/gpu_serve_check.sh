#!/usr/bin/env bash
# Server numbers on the GPU machine (issue 5: aggregate decode at 64 streams, server overhead at batch 1), or on
# any machine with DEVICE=cpu:
#   1. builds a server-enabled unigemma + bench/load_gen in $BUILD (CUDA on unless DEVICE=cpu; cpp-httplib from
#      pkg-config, or where the machine has none the copy carried as build/carry/httplib: scripts/gpu_carry_httplib.sh)
#   2. starts `unigemma serve -m MODEL_DIR --device $DEVICE` on a free port and waits for /health
#   3. runs load_gen at each concurrency of $LEVELS, max(4, $REQUESTS_PER_CLIENT x concurrency) streaming
#      requests per level, ~$PROMPT_TOKENS prompt tokens (calibrated once) and max_tokens $GEN_TOKENS (temperature
#      $TEMPERATURE: 0 greedy, above it sampled with the server's top-k 64 / top-p 0.95 defaults)
#   4. saves /metrics, stops the server with SIGTERM and reports its exit code
#   5. runs `unigemma bench -b 1` at the same prompt length (as --ctx) and -n, and prints the server overhead at
#      batch 1: the single stream's time per output token (load_gen TPOT p50 = (e2e - TTFT) / (tokens - 1)) vs
#      bench's decode time per token (1 / tg t/s)
# Output in $OUT: serve_check.txt (summary), serve_summary.json, load_c<N>.json/.txt, bench_b1.txt, serve.log,
# metrics.txt, build.log. Exit 0 when every step ran and no request failed (the targets are reported, not enforced).
# The server has no ignore_eos / min_tokens: a model that stops early shows as fewer tokens per request (the
# summary prints completion tokens per request; random-weight models practically never emit EOS).
#
#   scripts/gpu_serve_check.sh /tmp/gemma-4-12b-random                # after scripts/gpu_check.sh full made it
#   PRESET=gemma-4-12b scripts/gpu_serve_check.sh /tmp/g12             # creates a random 12B there if missing
#   DEVICE=cpu PRESET=tiny scripts/gpu_serve_check.sh /tmp/tiny        # the whole path on a CPU, tiny model
# Environment (defaults): DEVICE (cuda), OUT (build/gpu_out), BUILD (build/gpu-serve; cpu: build/cpu-serve),
#   LEVELS (1,8,32,64), DEVICE_ARGS (more serve and bench options, e.g. "--kv-cache-dtype fp8"), SERVE_ARGS (more
#   serve options, e.g. "--max-step-tokens 256"),
#   REQUESTS_PER_CLIENT (2), PROMPT_TOKENS (128), GEN_TOKENS (128), TEMPERATURE (0), BENCH_REPS (3),
#   PRESET (init-random preset for a missing MODEL_DIR), TOKENIZER (when MODEL_DIR has no tokenizer.json; else
#   build/test_assets/tokenizer or the carried build/carry/tokenizer), JOBS (nproc), SKIP_BUILD=1, BUILD_ONLY=1,
#   timeouts in s: BUILD_TIMEOUT (540), LOAD_TIMEOUT (300: model load until /health), LEVEL_TIMEOUT (180),
#   BENCH_TIMEOUT (300).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
root=$PWD
t_start=$(date +%s)

DEVICE="${DEVICE:-cuda}"
OUT="${OUT:-build/gpu_out}"
if [ "$DEVICE" = cpu ]; then cuda=OFF; BUILD="${BUILD:-build/cpu-serve}"; else cuda=ON; BUILD="${BUILD:-build/gpu-serve}"; fi
LEVELS="${LEVELS:-1,8,32,64}"
read -r -a device_extra <<<"${DEVICE_ARGS:-}"  # e.g. DEVICE_ARGS="--kv-cache-dtype fp8": for serve and bench
read -r -a serve_extra <<<"${SERVE_ARGS:-}"    # e.g. SERVE_ARGS="--max-step-tokens 256": for serve only
REQUESTS_PER_CLIENT="${REQUESTS_PER_CLIENT:-2}"
PROMPT_TOKENS="${PROMPT_TOKENS:-128}"
GEN_TOKENS="${GEN_TOKENS:-128}"
TEMPERATURE="${TEMPERATURE:-0}"
BENCH_REPS="${BENCH_REPS:-3}"
JOBS="${JOBS:-$(nproc)}"
BUILD_TIMEOUT="${BUILD_TIMEOUT:-540}" LOAD_TIMEOUT="${LOAD_TIMEOUT:-300}"
LEVEL_TIMEOUT="${LEVEL_TIMEOUT:-180}" BENCH_TIMEOUT="${BENCH_TIMEOUT:-300}"
GRACE_S=10  # serve --shutdown-grace-s

mkdir -p "$OUT" || { echo "gpu_serve_check: cannot create $OUT" >&2; exit 1; }
OUT=$(cd "$OUT" && pwd)
summary="$OUT/serve_check.txt"
: >"$summary"
say() { echo "$*" | tee -a "$summary"; }
since() { echo "$(( $(date +%s) - $1 )) s"; }
server_pid=""
die() {
  say "FAILED: $*"
  say "== gpu_serve_check: FAIL after $(since "$t_start")"
  exit 1
}
cleanup() { [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null && kill -KILL "$server_pid" 2>/dev/null; }
trap cleanup EXIT

model="${1:-}"
[ -n "$model" ] || { sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
case "$model" in /*) ;; *) model="$root/$model" ;; esac
command -v python3 >/dev/null || die "python3 is required (summary, /health polling)"
[[ "$LEVELS" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "LEVELS=$LEVELS: expected e.g. 1,8,32,64"

say "== gpu_serve_check $(date -u +%FT%TZ) on $(hostname): device $DEVICE, model $model, $(nproc) cores, $(rev=$(git rev-parse --short HEAD 2>/dev/null) && echo "commit $rev$(git diff --quiet HEAD 2>/dev/null || echo ' + changes')" || echo 'not a git checkout')"
if [ "$cuda" = ON ] && command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader 2>&1 | sed 's/^/gpu: /' | tee -a "$summary"
fi

# ---- 1. build --------------------------------------------------------------------------------------------
bin="$root/$BUILD/unigemma" lg="$root/$BUILD/bench/load_gen"
log="$OUT/build.log"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  : >"$log"
  carry="$root/build/carry/httplib/lib/pkgconfig"
  if [ "${HTTPLIB:-}" != carry ] && pkg-config --exists cpp-httplib 2>/dev/null; then
    say "cpp-httplib: this machine's ($(pkg-config --modversion cpp-httplib))"
  elif [ -f "$carry/cpp-httplib.pc" ]; then
    export PKG_CONFIG_PATH="$carry${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
    say "cpp-httplib: the carried copy in build/carry/httplib ($(pkg-config --modversion cpp-httplib 2>&1))"
  else
    die "no cpp-httplib here and no build/carry/httplib: run scripts/gpu_carry_httplib.sh on the Debian machine and carry build/carry/httplib"
  fi
  cfg=(-S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release "-DUNIGEMMA_CUDA=$cuda" -DUNIGEMMA_SERVER=ON
       -DUNIGEMMA_BENCH=ON -DUNIGEMMA_TESTS=OFF -DUNIGEMMA_MEDIA_REQUIRED=OFF)
  command -v ccache >/dev/null && cfg+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  t=$(date +%s)
  timeout 300 cmake "${cfg[@]}" >>"$log" 2>&1 || { tail -30 "$log" | tee -a "$summary"; die "configure of $BUILD (log: $log)"; }
  timeout "$BUILD_TIMEOUT" ninja -C "$BUILD" -j"$JOBS" unigemma load_gen >>"$log" 2>&1
  rc=$?
  [ $rc -eq 124 ] && die "build did not finish in $BUILD_TIMEOUT s (BUILD_TIMEOUT; rerun: ninja continues where it stopped)"
  [ $rc -eq 0 ] || { grep -E "error|FAILED" "$log" | head -30 | tee -a "$summary"; die "build (log: $log)"; }
  say "build: $BUILD ok ($(since "$t")); httplib at run time: $(ldd "$bin" | awk '$1 ~ /^libcpp-httplib/ {print $3}')"
fi
[ -x "$bin" ] && [ -x "$lg" ] || die "$bin or $lg missing (build first, without SKIP_BUILD=1)"
ldd "$bin" | grep -q "not found" && { ldd "$bin" | grep "not found" | tee -a "$summary"; die "$bin: libraries not found"; }
[ "${BUILD_ONLY:-0}" = 1 ] && { say "== BUILD_ONLY: done ($(since "$t_start"))"; exit 0; }

# ---- model and tokenizer ---------------------------------------------------------------------------------
tok_args=()
find_tokenizer() {
  local c
  for c in "${TOKENIZER:-}" "$root/build/test_assets/tokenizer/tokenizer.json"; do
    [ -n "$c" ] && [ -f "$c" ] && { echo "$c"; return 0; }
  done
  local gz="$root/build/carry/tokenizer/tokenizer.json.gz" dir="${TMPDIR:-/tmp}/unigemma-tokenizer"
  if [ -f "$gz" ]; then
    mkdir -p "$dir" && gunzip -c "$gz" >"$dir/tokenizer.json" || return 1
    cp "$(dirname "$gz")/tokenizer_config.json" "$dir/" 2>/dev/null
    echo "$dir/tokenizer.json"
    return 0
  fi
  return 1
}
if [ ! -f "$model/tokenizer.json" ]; then
  tok=$(find_tokenizer) || die "$model has no tokenizer.json and none was found: set TOKENIZER, or carry build/carry/tokenizer (scripts/gpu_carry_httplib.sh)"
  tok_args=(--tokenizer "$tok")
fi
if [ ! -f "$model/config.json" ]; then
  [ -n "${PRESET:-}" ] || die "$model/config.json missing (PRESET=gemma-4-12b creates a random model there)"
  t=$(date +%s)
  timeout 600 "$bin" init-random --preset "$PRESET" --out "$model" "${tok_args[@]}" >"$OUT/init_random.txt" 2>&1 ||
    { tail -5 "$OUT/init_random.txt" | tee -a "$summary"; die "init-random --preset $PRESET --out $model"; }
  say "model: created a random $PRESET in $model ($(since "$t"))"
  [ -f "$model/tokenizer.json" ] && tok_args=()
fi

# ---- 2. server -------------------------------------------------------------------------------------------
http_get() {  # URL [FILE]: 0 when the answer is 200 (body to FILE)
  python3 - "$@" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        body = r.read()
        if len(sys.argv) > 2: open(sys.argv[2], "wb").write(body)
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}
max_c=$(tr ',' '\n' <<<"$LEVELS" | sort -n | tail -1)
serve_args=(serve --model "$model" "${tok_args[@]}" --device "$DEVICE" --port 0 --max-running "$max_c"
            --http-threads $(( max_c + 64 > 128 ? max_c + 64 : 128 )) --shutdown-grace-s "$GRACE_S" "${device_extra[@]}" "${serve_extra[@]}")
say "serve: ${serve_args[*]}"
t=$(date +%s)
"$bin" "${serve_args[@]}" >"$OUT/serve.log" 2>&1 &
server_pid=$!
url=""
while :; do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    wait "$server_pid"; rc=$?; server_pid=""
    tail -20 "$OUT/serve.log" | tee -a "$summary"
    die "the server exited with code $rc before it was ready (log: $OUT/serve.log)"
  fi
  [ -n "$url" ] || url=$(grep -o 'on http://[0-9.]*:[0-9]*' "$OUT/serve.log" | head -1 | sed 's/^on //')
  [ -n "$url" ] && http_get "$url/health" && break
  if (( $(date +%s) - t >= LOAD_TIMEOUT )); then
    tail -20 "$OUT/serve.log" | tee -a "$summary"
    die "the server was not ready after $LOAD_TIMEOUT s (LOAD_TIMEOUT)"
  fi
  sleep 1
done
say "serve: ready at $url after $(since "$t") (pid $server_pid)"

# ---- 3. load ---------------------------------------------------------------------------------------------
status=0
prompt_args=(--prompt-tokens "$PROMPT_TOKENS")
warmup=2
rm -f "$OUT"/load_c*.json "$OUT"/load_c*.txt
for c in ${LEVELS//,/ }; do
  n=$(( c * REQUESTS_PER_CLIENT > 4 ? c * REQUESTS_PER_CLIENT : 4 ))
  t=$(date +%s)
  timeout "$LEVEL_TIMEOUT" "$lg" --url "$url" -c "$c" -n "$n" --max-tokens "$GEN_TOKENS" "${prompt_args[@]}" \
    --temperature "$TEMPERATURE" \
    --warmup "$warmup" --seed $(( 1000 + c )) --read-timeout 120 --timeout "$LEVEL_TIMEOUT" \
    --json-out "$OUT/load_c$c.json" >"$OUT/load_c$c.txt" 2>&1
  rc=$?
  say "load_gen c=$c: $n requests, rc $rc ($(since "$t"))"
  if [ $rc -ne 0 ]; then
    status=1
    grep -E "error" "$OUT/load_c$c.txt" | head -5 | tee -a "$summary"
    [ $rc -eq 124 ] && say "  (timed out after $LEVEL_TIMEOUT s: LEVEL_TIMEOUT)"
    kill -0 "$server_pid" 2>/dev/null || { say "  the server died"; break; }
    [ $rc -eq 1 ] || break  # 1 = some requests failed; anything else: load_gen could not run
  fi
  if [ $warmup -gt 0 ]; then  # calibrated once: the same user-message length for every level
    words=$(sed -n 's/^calibrated: \([0-9]*\) words.*/\1/p' "$OUT/load_c$c.txt" | head -1)
    [ -n "$words" ] && { prompt_args=(--prompt-words "$words"); say "  prompt: $(grep '^calibrated' "$OUT/load_c$c.txt")"; }
    warmup=0
  fi
done

# ---- 4. shutdown -----------------------------------------------------------------------------------------
if http_get "$url/metrics" "$OUT/metrics.txt"; then
  # The scheduler's steps over the whole run (every level): their wall time and the part inside the forward pass
  # (the rest is host work between two accelerator steps; LEVELS=64 alone isolates the 64-stream steps).
  awk '$1 == "unigemma_scheduler_steps_total" {n = $2} $1 == "unigemma_scheduler_step_seconds_total" {s = $2}
       $1 == "unigemma_scheduler_forward_seconds_total" {f = $2}
       $1 ~ /^unigemma_scheduler_host_seconds_total/ {split($1, a, "\""); ph[a[2]] = $2; order[++k] = a[2]}
       END {if (n > 0 && s > 0) {
              printf "scheduler: %d steps, %.2f ms each, %.1f%% of it host work outside the forward pass (µs a step:", n, 1000 * s / n, 100 * (s - f) / s
              for (i = 1; i <= k; ++i) printf " %s %.0f", order[i], 1e6 * ph[order[i]] / n
              printf ")\n"}}' \
    "$OUT/metrics.txt" | tee -a "$summary"
else
  say "warning: GET /metrics failed"
fi
server_rc="none"
if kill -0 "$server_pid" 2>/dev/null; then
  t=$(date +%s)
  kill -TERM "$server_pid"
  while kill -0 "$server_pid" 2>/dev/null && (( $(date +%s) - t < GRACE_S + 30 )); do sleep 0.5; done
  if kill -0 "$server_pid" 2>/dev/null; then
    say "serve: still running $(( GRACE_S + 30 )) s after SIGTERM: killed"
    kill -KILL "$server_pid"
  fi
  wait "$server_pid"; server_rc=$?
  say "serve: exit code $server_rc after SIGTERM ($(since "$t"))"
else
  wait "$server_pid"; server_rc=$?
  say "serve: had already exited with code $server_rc"
fi
server_pid=""
[ "$server_rc" = 0 ] || status=1

# ---- 5. bench at batch 1 ---------------------------------------------------------------------------------
ctx=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["levels"][0]["prompt_tokens_mean"]))' \
      "$OUT/load_c$(cut -d, -f1 <<<"$LEVELS").json" 2>/dev/null) || ctx=""
[[ "$ctx" =~ ^[1-9][0-9]*$ ]] || ctx=$PROMPT_TOKENS
bench_args=(bench -m "$model" --device "$DEVICE" -p "$ctx" -n "$GEN_TOKENS" -b 1 --ctx "$ctx" -r "$BENCH_REPS"
            "${device_extra[@]}")
[ "$DEVICE" = cpu ] && bench_args+=(--no-bandwidth)
say "bench: ${bench_args[*]}"
t=$(date +%s)
timeout "$BENCH_TIMEOUT" "$bin" "${bench_args[@]}" >"$OUT/bench_b1.txt" 2>&1
rc=$?
say "bench: rc $rc ($(since "$t"))"
grep -E "^\| (pp|tg)" "$OUT/bench_b1.txt" | tee -a "$summary"
tg=$(awk -F'|' -v n="tg$GEN_TOKENS b1 ctx$ctx" '{gsub(/^ +| +$/, "", $2)} $2 == n {split($3, a, " "); print a[1]}' "$OUT/bench_b1.txt")
[ $rc -eq 0 ] && [ -n "$tg" ] || { status=1; tail -5 "$OUT/bench_b1.txt" | tee -a "$summary"; say "bench failed: no overhead figure"; }

# ---- summary ---------------------------------------------------------------------------------------------
python3 - "$OUT" "$LEVELS" "$GEN_TOKENS" "${tg:-0}" "$DEVICE" "$server_rc" <<'PY' | tee -a "$summary"
import json, os, sys
out, levels, gen, tg, device, server_rc = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
rows = []
for c in levels:
    f = os.path.join(out, f"load_c{c}.json")
    if os.path.exists(f):
        rows += json.load(open(f))["levels"]
print(f"\n{'conc':>4} {'ok':>4} {'err':>3} {'out tok/s':>9} {'c x strm':>9} {'tok/req':>7} {'prompt':>6} | "
      f"{'TTFT p50':>8} {'p90':>7} {'p99':>7} ms | {'ITL p50':>7} {'p90':>6} {'p99':>6} ms | {'TPOT p50':>8} ms")
for r in rows:
    t, i = r["ttft_ms"], r["itl_ms"]
    print(f"{r['concurrency']:>4} {r['ok']:>4} {r['errors']:>3} {r['output_tokens_per_s']:>9.1f} "
          f"{r['concurrency'] * r['stream_tokens_per_s_p50']:>9.1f} {r['completion_tokens_mean']:>7.1f} "
          f"{r['prompt_tokens_mean']:>6.0f} | {t['p50']:>8.1f} {t['p90']:>7.1f} {t['p99']:>7.1f}    | "
          f"{i['p50']:>7.2f} {i['p90']:>6.2f} {i['p99']:>6.2f}    | {r['tpot_ms']['p50']:>8.2f}")
print("out tok/s = completion tokens of all requests / wall time of the level (prefill and ramp included); "
      "c x strm = concurrency x median per-stream decode speed; tok/req = mean completion tokens per request")
short = [r for r in rows if r["completion_tokens_mean"] < gen]
if not rows:
    print("tokens per request: no level ran")
elif not short:
    print(f"tokens per request: every level averaged the full max_tokens ({gen})")
else:
    lst = ", ".join("c={}: {:.1f}".format(r["concurrency"], r["completion_tokens_mean"]) for r in short)
    print(f"tokens per request: below max_tokens {gen} at {lst} (the model stopped early: EOS; the server has no ignore_eos)")
res = {"device": device, "max_tokens": gen, "levels": rows, "bench_tg_b1_tok_s": tg or None,
       "server_exit_code_after_sigterm": server_rc}
one = next((r for r in rows if r["concurrency"] == 1 and r["ok"] > 0), None)
if one and tg > 0:
    bench_ms = 1000.0 / tg
    tpot, itl = one["tpot_ms"]["p50"], one["itl_ms"]["p50"]
    ov = 100.0 * (tpot / bench_ms - 1)
    res.update(bench_ms_per_token=bench_ms, server_tpot_p50_ms=tpot, server_itl_p50_ms=itl, overhead_pct=ov,
               overhead_itl_pct=100.0 * (itl / bench_ms - 1))
    print(f"server overhead at batch 1: {ov:+.1f}% (one stream: {tpot:.2f} ms per output token, TPOT p50; "
          f"bench: {bench_ms:.2f} ms = 1 / {tg:.1f} t/s); by ITL p50 ({itl:.2f} ms): {100.0 * (itl / bench_ms - 1):+.1f}%")
else:
    print("server overhead at batch 1: n/a (no concurrency-1 level or no bench figure)")
c64 = next((r for r in rows if r["concurrency"] == 64), None)
if device != "cpu":
    # Decode: 64 x the median stream's rate from its first token to its last; out: all tokens over the level's wall
    # time (each request's prefill and the ramp in it).
    agg = 64 * c64["stream_tokens_per_s_p50"] if c64 else None
    print("issue 5 targets: aggregate decode at 64 streams >= 6,000 tok/s: "
          + (f"{agg:,.0f} ({'met' if agg >= 6000 else 'NOT met'}; output rate with prefill and ramp "
             f"{c64['output_tokens_per_s']:,.0f})" if agg is not None else "not measured")
          + "; overhead at batch 1 <= 3%: "
          + (f"{res['overhead_pct']:+.1f}% ({'met' if res['overhead_pct'] <= 3 else 'NOT met'})" if "overhead_pct" in res else "not measured"))
json.dump(res, open(os.path.join(out, "serve_summary.json"), "w"), indent=2)
PY
say "== gpu_serve_check: $([ $status -eq 0 ] && echo PASS || echo FAIL) ($(since "$t_start"); results in $OUT)"
exit $status
