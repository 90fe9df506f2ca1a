#!/usr/bin/env bash
# On the GPU machine: Nsight Compute on one launch of one kernel, with the sections that say what bounds it (speed
# of light, pipe utilization, warp stalls, occupancy), and optionally the SASS instruction mix of its compiled
# variants. How session 12 found the decode attention kernel issue-bound, not memory-bound (docs/perf.md).
#   KERNEL=decode_attention_kernelILi256ELi2ELNS0_6KvTypeE2 SKIP=63 \
#   OBJ=build/gpu/CMakeFiles/ug_cuda.dir/src/backend/cuda/attention_decode.cu.o \
#   scripts/gpu_ncu.sh build/gpu/tests/cuda_attention_test --gtest_filter='*DecodeKernelThroughput12B*' \
#     --gtest_also_run_disabled_tests
# KERNEL: a regex on the mangled name (required); SKIP: launches of it to skip first (0); OBJ: an object file whose
# functions matching KERNEL get an instruction histogram. Writes $OUT/ncu.txt (and $OUT/sass.txt); prints a digest.
set -uo pipefail
: "${KERNEL:?KERNEL (a regex on the mangled kernel name) must be set}"
[ $# -ge 1 ] || { echo "usage: KERNEL=regex [SKIP=n] [OBJ=file.o] $0 COMMAND [ARGS...]"; exit 2; }
OUT="${OUT:-build/gpu_out}"
mkdir -p "$OUT"
timeout "${NCU_TIMEOUT:-300}" ncu --kernel-name-base mangled --kernel-name "regex:$KERNEL" --launch-skip "${SKIP:-0}" \
  --launch-count 1 --section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats \
  --section Occupancy --section LaunchStats --print-details all "$@" >"$OUT/ncu.txt" 2>&1
rc=$?
echo "ncu rc=$rc (whole report: $OUT/ncu.txt)"
grep -E "Grid Size|Block Size|Registers Per|Duration|DRAM Throughput|Compute \(SM\) Throughput|Issue Slots Busy|Executed Ipc Active|Achieved Occupancy|SM: Pipe .* Cycles Active|SM: Inst Executed Pipe (Lsu|Xu)|Warp Cycles Per Issued|Stall (Not Selected|Wait|Long Scoreboard|Short Scoreboard|Math Pipe Throttle|Barrier|MIO Throttle|LG Throttle)" \
  "$OUT/ncu.txt" | sed 's/  */ /g'
if [ -n "${OBJ:-}" ]; then
  cuobjdump -sass "$OBJ" >"$OUT/sass.txt" 2>&1 || { echo "cuobjdump failed on $OBJ"; exit 1; }
  python3 - "$OUT/sass.txt" "$KERNEL" <<'PY'
import collections, re, sys
funcs, name = {}, None
for line in open(sys.argv[1]):
    m = re.search(r"Function : (\S+)", line)
    if m:
        name = m.group(1)
        funcs[name] = collections.Counter()
        continue
    m = re.match(r"\s+/\*[0-9a-f]+\*/\s+(@!?U?P\w+\s+)?([A-Z0-9_]+(\.[A-Z0-9_.]+)?)", line)
    if m and name:
        funcs[name][m.group(2)] += 1
for name, counts in funcs.items():
    if re.search(sys.argv[2], name):
        print(f"{name}: {sum(counts.values())} instructions")
        print("  " + ", ".join(f"{op} {n}" for op, n in counts.most_common(24)))
PY
fi
exit $rc
