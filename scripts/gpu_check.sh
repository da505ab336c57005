#!/usr/bin/env bash
# The GPU machine's check: builds Kiln with the CUDA backend (all cores), runs the GPU tests and the GPU
# benchmark, and writes logs plus a summary table under $OUT (the device tool brings $OUT back).
#
# Usage: scripts/gpu_check.sh [phase ...]     phases: build toolchain unit gpu checks (unit + gpu at once) unfused conformance zoo trace accuracy bench kernelprof timeline patterns probe
#                                             (default: build unit gpu bench)
# Environment: OUT (default /tmp/kiln-gpu), BENCH_ARGS (extra arguments for bench/gpu_bench.py),
#              PYTEST_ARGS (extra arguments for the GPU pytest run), GPU_K (a pytest -k expression for the
#              GPU pytest run, spaces allowed: "(resnet50 or mobilenetv2) and fp16"),
#              NCU_KERNEL, NCU_MODEL, NCU_BATCH, NCU_ENV, NCU_ARGS, NCU_RANGE (the kernelprof and timeline phases: below),
#              ACCURACY_ARGS (extra arguments for
#              bench/switch_accuracy.py, e.g. --builds 1,1,128 --switches ...), UNIT_FILTER (a --gtest_filter for the unit
#              phase), PHASE_TIMEOUT (seconds one phase may run,
#              default 400: a hung phase still leaves the others' results and the summary), BUILD_TARGETS
#              (ninja targets for the build phase; default all), PROBE_ARGS (arguments for bench/rebuild_probe.py,
#              the probe phase: several builds of one model in one process, their GEMM choices and times;
#              its per-build logs go to $OUT/probe-logs.tar.gz).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/kiln-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/python
PHASES=${*:-build unit gpu bench}
SUMMARY=$OUT/summary.md
echo "| phase | result | seconds |" > "$SUMMARY"
echo "|---|---|---|" >> "$SUMMARY"
status=0

phase() {  # phase NAME COMMAND...: runs COMMAND, logs to $OUT/NAME.log, records the result
  local name=$1
  shift
  local t0=$SECONDS
  echo "== $name: $*"
  # bash -c with the function definitions, since timeout runs programs, not this script's functions.
  if timeout -k 5 "${PHASE_TIMEOUT:-400}" bash -c "$(declare -f build trace_tests toolchain kernelprof timeline); \"\$@\"" _ "$@" > "$OUT/$name.log" 2>&1; then
    echo "| $name | ok | $((SECONDS - t0)) |" >> "$SUMMARY"
  else
    echo "| $name | FAILED (rc $?) | $((SECONDS - t0)) |" >> "$SUMMARY"
    status=1
    tail -40 "$OUT/$name.log"
  fi
}

# A per-test limit where pytest-timeout is installed, so one hung test costs one test, not the phase.
PYTEST_TIMEOUT=()
python3 -c "import pytest_timeout" 2>/dev/null && PYTEST_TIMEOUT=(--timeout="${TEST_TIMEOUT:-150}")

build() {
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv
  local cudnn
  cudnn=$(python3 -c "import nvidia.cudnn, os; print(nvidia.cudnn.__path__[0])")
  local gtest=()
  [ -d third_party/googletest ] && gtest=(-DKILN_GTEST_SOURCE_DIR=$PWD/third_party/googletest)
  # The system compiler when there is one: the machine's environment points CXX at /opt/gcc, whose builds
  # carry a static copy of libstdc++ in libkiln_core.so (68 std::locale / ostream symbols defined there);
  # beside the Python process's shared libstdc++ that broke number formatting in engine.describe() (a num_put
  # call landed in a codecvt facet). KILN_GPU_ENV_CXX=1 keeps the environment's compiler.
  # The environment's CUDAHOSTCXX must go too: CMake detects nvcc's host compiler from it, and the link of
  # libkiln_core.so then gets that compiler's library folders (-L/opt/gcc/lib/...), where -lstdc++ found
  # /opt/gcc's libstdc++.a (the linker's -y trace, call 2 of the sixth session).
  local cxx=()
  if [ -x /usr/bin/g++ ] && [ -x /usr/bin/gcc ] && [ -z "${KILN_GPU_ENV_CXX:-}" ]; then
    local env_cc=${CC:-} env_cxx=${CXX:-} env_host=${CUDAHOSTCXX:-}
    export CC=/usr/bin/gcc CXX=/usr/bin/g++ CUDAHOSTCXX=/usr/bin/g++
    cxx=(-DCMAKE_CXX_COMPILER=/usr/bin/g++ -DCMAKE_C_COMPILER=/usr/bin/gcc -DCMAKE_CUDA_HOST_COMPILER=/usr/bin/g++)
  fi
  # Each call copies the tree anew (fresh mtimes), so a warm machine's build-gpu/ is rebuilt whole (116 s);
  # ccache, where installed, turns that into cache hits.
  local launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
  local args=(-S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS=-g1 -DCUDNN_ROOT="$cudnn"
              -DKILN_CUDA_ARCHITECTURES=90 -DPython3_EXECUTABLE="$(command -v python3)" "${gtest[@]}" "${launcher[@]}")
  if ! cmake "${args[@]}" "${cxx[@]}"; then
    echo "configure with the system compiler failed; again with the compiler of the environment"
    rm -rf build-gpu
    CC=${env_cc:-$CC} CXX=${env_cxx:-$CXX} CUDAHOSTCXX=${env_host:-$CUDAHOSTCXX} cmake "${args[@]}" || return 1
  fi
  ninja -C build-gpu -j"$(nproc)" ${BUILD_TARGETS:-}
}

# How the build links the C++ runtime, and where the Python process finds it: a second copy of libstdc++
# (a static one linked into libkiln_core.so beside the process's shared one) breaks C++ stream formatting in
# the extension (engine.describe() crashed on the H200 in a num_put call dispatched to a codecvt facet).
toolchain() {
  echo "CXX=${CXX:-} CC=${CC:-} CUDAHOSTCXX=${CUDAHOSTCXX:-}"; type -a g++ gcc c++ 2>/dev/null || true; ls /usr/bin/g++* 2>/dev/null
  g++ --version | head -1; g++ -print-file-name=libstdc++.so; g++ -print-file-name=libstdc++.a
  ls "$(dirname "$(g++ -print-file-name=libstdc++.a)")" | grep -i "stdc++" | head
  grep -i "CMAKE_CXX_COMPILER:\|CMAKE_CUDA_HOST_COMPILER:\|LINKER_FLAGS:" build-gpu/CMakeCache.txt
  for so in build-gpu/libkiln_core.so python/kiln/_kiln*.so build-gpu/python/kiln/_kiln*.so; do
    [ -f "$so" ] || continue
    echo "== $so"; ldd "$so" | grep -iE "stdc|gcc_s|cudart" || true
    echo "defined libstdc++ symbols: $(nm -D --defined-only "$so" | grep -c '_ZNSo9_M_insert\|_ZNSt6locale')"
  done
  python3 -c "import torch, kiln; print(open('/proc/self/maps').read())" | grep -oE "/[^ ]*stdc\+\+[^ ]*" | sort -u
  # Which symbols those are, and which input of the link defines them (the linker's -y trace on a relink to /tmp).
  nm -DC --defined-only build-gpu/libkiln_core.so | grep -E "std::locale|ostream::_M_insert" | head -30
  local link
  link=$(ninja -C build-gpu -t commands libkiln_core.so | tail -1)
  link=${link% && :}  # ninja's ": && cmd && :" wrapper, so the extra flags reach the linker
  link=${link#: && }
  echo "link: ${link:0:400} ... ${link: -600}"
  (cd build-gpu && eval "${link/-o libkiln_core.so/-o /tmp/kiln_core_trace.so} -Wl,-y,_ZNSt6localeC1Ev \
      -Wl,-y,_ZNSt6locale7classicEv -Wl,-y,_ZNSo9_M_insertImEERSoT_") 2>&1 | grep -v "reference to" | head -20
  # Which definition the loader binds the process's references to.
  LD_DEBUG=bindings python3 -c "import kiln" 2>&1 | grep -E "_ZNSt6locale7classicEv|_ZNSo9_M_insertImEERSoT_" | head -12
}

trace_tests() {
  local gdb
  gdb=$(command -v cuda-gdb || echo /usr/local/cuda/bin/cuda-gdb)
  for t in ${TRACE_TESTS:-}; do
    echo "== $t"
    timeout 150 "$gdb" -batch -ex run -ex bt -ex "info sharedlibrary libkiln" \
      --args python3 -m pytest -q -x -p no:cacheprovider -p no:faulthandler "$t" 2>&1 | grep -vE "^\[New Thread|^\[Thread" | tail -60
  done
}

# The unit and GPU test runs, for their own phases and for `checks`, which runs both at once.
UNIT_RUN=(./build-gpu/kiln_unit_tests --gtest_brief=1 --gtest_filter="${UNIT_FILTER:-*}")
# shellcheck disable=SC2206  # PYTEST_ARGS is a list of words
# tests/gpu, and the Python tests whose float16 cases need a GPU (skipped on the CPU machines). The slowest
# tests' times close the log (--durations): the whole run takes ~280 s of a 30-minute session's device time.
# The run stops itself, with its summary and durations, once it has used the phase's time less 90 s (the longest
# test, a full-size model build, takes ~40 s): a run the phase's timeout kills returns no durations.
GPU_RUN=(env KILN_GPU_SUITE_DEADLINE_S="$(( ${PHASE_TIMEOUT:-400} - 90 ))"
         python3 -m pytest -q -s -p no:cacheprovider --durations=20 tests/gpu tests/python/test_stem_space_to_depth.py
         "${PYTEST_TIMEOUT[@]}" ${PYTEST_ARGS:-})
[ -n "${GPU_K:-}" ] && GPU_RUN+=(-k "$GPU_K")

# Nsight Compute on the first launch of one kernel (NCU_KERNEL, a regex on its name) inside one benchmark
# row (NCU_MODEL, default resnet50; NCU_BATCH, default large), with NCU_ENV (space-separated NAME=VALUE, e.g.
# KILN_CONV_NARROW=force) set for that run. Sections: speed of light, compute and memory workloads, warp
# states, scheduler, occupancy, launch; NCU_ARGS adds to them (--metrics ...). The clocks are left alone
# (the device docs' method). The report goes to OUT/kernelprof.log.
kernelprof() {
  [ -n "${NCU_KERNEL:-}" ] || { echo "kernelprof: set NCU_KERNEL (a regex on the kernel's name)"; return 2; }
  local ncu
  ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
  [ -n "$ncu" ] || { echo "kernelprof: no ncu on this machine"; return 2; }
  "$ncu" --version | tail -1
  # Section bodies (the warp state section's stall reasons) where this version can print them.
  local details=()
  "$ncu" --help 2>/dev/null | grep -q -- "--print-details" && details=(--print-details all)
  # The per-reason stall metrics this version names, for NCU_ARGS="--metrics ..." in a later call.
  "$ncu" --query-metrics --chip gh100 2>/dev/null | grep -oE "^smsp__[a-z_]*issue_stalled[a-z_]*" | sort -u | head -80
  # shellcheck disable=SC2086  # NCU_ENV and NCU_ARGS are lists of words
  # NCU_RANGE=1: only the kernels of one CUDA-graph replay (gpu_bench.py --profiler-range), so -c 1 takes the
  # first launch of NCU_KERNEL in the inference, not in the build's tactic timings.
  local range=() bench_range=()
  [ -n "${NCU_RANGE:-}" ] && { range=(--profile-from-start off); bench_range=(--profiler-range); }
  env ${NCU_ENV:-} "$ncu" --clock-control none "${range[@]}" -k "regex:$NCU_KERNEL" -c 1 "${details[@]}" \
    --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
    --section WarpStateStats --section SchedulerStats --section Occupancy --section LaunchStats ${NCU_ARGS:-} \
    python3 bench/gpu_bench.py --models "${NCU_MODEL:-resnet50}" --batches "${NCU_BATCH:-large}" --iters 3 --no-compile \
    "${bench_range[@]}"
}

# Every kernel of one batch-NCU_BATCH inference of NCU_MODEL (one CUDA-graph replay, bracketed by
# gpu_bench.py --profiler-range), each timed alone by ncu: kernel time against what lies between kernels.
timeline() {
  local ncu
  ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
  [ -n "$ncu" ] || { echo "timeline: no ncu on this machine"; return 2; }
  # shellcheck disable=SC2086  # NCU_ENV is a list of words
  # --cache-control none: ncu's default flushes the caches before each kernel, which timed every kernel cold
  # (the first timeline summed to 380 us against a 322 us replay); in a replay the weights sit in L2.
  env ${NCU_ENV:-} "$ncu" --clock-control none --cache-control none --profile-from-start off \
    --metrics gpu__time_duration.sum --csv --print-units base --log-file "$OUT/timeline.csv" \
    python3 bench/gpu_bench.py --models "${NCU_MODEL:-resnet50}" --batches "${NCU_BATCH:-1}" --iters 3 \
    --no-compile --profiler-range || return 1
  # The replay's time under ncu is ncu's (it intercepts every launch): the gap line takes the bench phase's
  # time of the same model and batch, when this call ran it.
  local ms
  ms=$(python3 - "$OUT/bench.json" "${NCU_MODEL:-resnet50}" "${NCU_BATCH:-1}" <<'PY'
import json, sys
try:
    rows = json.load(open(sys.argv[1]))["rows"]
except OSError:
    sys.exit()
want = sys.argv[3]
for r in rows:
    if r.get("model") == sys.argv[2] and "kiln_ms" in r and (str(r["batch"]) == want or (want == "large" and r["batch"] > 1)):
        print(r["kiln_ms"])
        break
PY
)
  python3 bench/kernel_timeline.py "$OUT/timeline.csv" ${ms:+--model-ms "$ms"}
}

# The lines of an Nsight Compute report that say what bounds a kernel: its launch, time, throughputs, pipes,
# issue and eligibility, stall reasons (nonzero), occupancy and its limits, one copy each. The report's tables
# of occupancy against registers, block size and shared memory (hundreds of lines) stay in the log: as the
# tail of a call's output they had pushed everything else out of it (eleventh session, calls 2 and 5).
kernelprof_digest() {
  local pat='Duration|Elapsed Cycles|SM Frequency|DRAM Throughput|^ +Memory Throughput|L1/TEX Cache Throughput'
  pat+='|L2 Cache Throughput|Compute \(SM\) Throughput|Issue Slots Busy|Executed Ipc Active|Instructions Executed'
  pat+='|One or More Eligible|Eligible Warps Per Scheduler|Active Warps Per Scheduler|No Eligible|Registers Per Thread'
  pat+='|Dynamic Shared Memory Per Block|Theoretical Occupancy|Achieved Occupancy|Block Limit|Grid Size|Block Size  '
  pat+='|Waves Per SM|Warp Cycles Per|Stall |SM: Pipe [A-Za-z ()]+ Cycles Active|SM: Inst Executed Pipe'
  pat+='|L1/TEX Hit Rate|L2 Hit Rate|Mem Busy|Max Bandwidth|Local Memory Spilling Requests  |Est\. (Local )?Speedup'
  pat+='|^  [a-z].*\(([0-9]+, ){2}[0-9]+\)x\('
  grep -E "$pat" "$1" | grep -vE "^kiln:|^smsp__|Per Block Size|Per Register Count|Per Shared Mem|[[:space:]]0(\.00)?[[:space:]]*$" | awk '!seen[$0]++' | head -90
}

for p in $PHASES; do
  case $p in
    build) phase build build ;;
    toolchain) phase toolchain toolchain ;;
    unit) phase unit "${UNIT_RUN[@]}" ;;
    # unit and gpu side by side (two processes on one GPU: correctness, not timing), for a shorter call.
    checks) phase unit "${UNIT_RUN[@]}" &
            phase gpu "${GPU_RUN[@]}"
            wait
            grep -q "FAILED" "$SUMMARY" && status=1 ;;
    gpu) phase gpu "${GPU_RUN[@]}" ;;
    # The six architectures again without NVRTC pointwise fusion (on by default), so both paths stay validated.
    unfused) phase unfused env KILN_FUSE_POINTWISE=0 python3 -m pytest -q -s -p no:cacheprovider \
        tests/gpu/test_gpu_models.py "${PYTEST_TIMEOUT[@]}" ${PYTEST_ARGS:-} ;;
    # The CUDA twins of the ONNX backend tests, in parallel workers (pytest-xdist replaces a crashed one, so one
    # crash costs one test, not the count).
    conformance) phase conformance env KILN_CONFORMANCE_JSON="$OUT/conformance.json" python3 -m pytest -q -p no:cacheprovider \
        -n "$(( $(nproc) / 2 ))" --max-worker-restart=10000 -k cuda "${PYTEST_TIMEOUT[@]}" tests/conformance ;;
    zoo) phase zoo python3 -m pytest -q -s -p no:cacheprovider tests/python/test_zoo.py "${PYTEST_TIMEOUT[@]}" ;;
    # Host backtraces of crashing tests (TRACE_TESTS: pytest node ids, space-separated) under cuda-gdb.
    trace) phase trace trace_tests ;;
    # ResNet-50's FP16 error per build and run-time switch (bench/switch_accuracy.py): fails when a default path
    # is wrong; side branches, off by default, are reported (they were wrong in captured graphs).
    accuracy) phase accuracy python3 bench/switch_accuracy.py --model resnet50 ${ACCURACY_ARGS:-} ;;
    bench) phase bench timeout "${BENCH_TIMEOUT:-570}" python3 bench/gpu_bench.py --json "$OUT/bench.json" ${BENCH_ARGS:-} ;;
    kernelprof) phase kernelprof kernelprof ;;
    timeline) phase timeline timeline ;;
    # The benchmark's transformers exported at a tiny size with this machine's torch/transformers, and the
    # layers Kiln leaves of them (OUT/patterns/), to study export patterns off the machine.
    patterns) phase patterns python3 bench/export_patterns.py ;;
    probe) mkdir -p "$OUT/probe"
           # shellcheck disable=SC2086  # PROBE_ARGS is a list of words
           phase probe python3 bench/rebuild_probe.py --log-dir "$OUT/probe" ${PROBE_ARGS:-}
           # One file for every build's log: the device tool returns at most 8 files from OUT.
           tar -czf "$OUT/probe-logs.tar.gz" -C "$OUT" probe && rm -rf "$OUT/probe" ;;
    *) echo "unknown phase $p"; exit 2 ;;
  esac
done
echo
cat "$SUMMARY"
for p in $PHASES; do
  case $p in
    gpu|unfused|zoo|bench|accuracy) echo "== $p (tail)"; grep -E "^\||^errors above" "$OUT/$p.log" | tail -60 ;;
    checks) echo "== gpu (tail)"; grep -E "^\|" "$OUT/gpu.log" | tail -60 ;;
    conformance) echo "== $p (tail)"; grep -E "^ONNX backend|passed|failed" "$OUT/$p.log" | tail -12 ;;
    timeline) echo "== $p (tail)"; tail -20 "$OUT/$p.log" ;;
    probe) echo "== $p (digest)"; grep -vE "Warning|warn|^ *(mask|self\.|torch\.)" "$OUT/$p.log" | head -60 ;;
    kernelprof) echo "== $p (digest; the whole report is in kernelprof.log)"; kernelprof_digest "$OUT/$p.log" ;;
  esac
done
exit $status
