#!/usr/bin/env bash
# The CUDA chapters on the GPU box, in stages that fit one device call each:
#   scripts/gpu_cycle.sh build test        # build everything, run the gpu-labelled tests
#   scripts/gpu_cycle.sh model doc         # (with SmolLM2 in $LAB_MODEL_DIR) real-model tests, --doc runs
#   scripts/gpu_cycle.sh sanitize labs     # all four compute-sanitizer tools; labs graded both ways
#   scripts/gpu_cycle.sh bench peers       # benchmarks and the PyTorch peers of the same call
#   scripts/gpu_cycle.sh bench8 peers      # chapter 8's benchmark only, and the peers
# Logs go to /tmp/gpu_logs; a tarball of them and a few key files go to $OUT (or ./gpu_out).
set -uo pipefail
FINAL=${OUT:-$PWD/gpu_out}
LOGS=/tmp/gpu_logs
mkdir -p "$LOGS" "$FINAL"
STAGES=${*:-build test}
B=${BUILD_DIR:-build-gpu}
# A GPU box without libpcre2-dev (needed by common/): a carried copy in .pcre/.
if [ -d .pcre ]; then
  export PKG_CONFIG_PATH=$PWD/.pcre/usr/lib/x86_64-linux-gnu/pkgconfig PKG_CONFIG_SYSROOT_DIR=$PWD/.pcre
  export LD_LIBRARY_PATH=$PWD/.pcre/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
export NCCL_NVLS_ENABLE=0  # never NVLink multicast (see chapter 12)
has() { [[ " $STAGES " == *" $1 "* ]]; }
ch08_bench() {
  $B/bin/ch08_cuda_kv_cache --bench --json "$FINAL/ch08.json" > "$LOGS/ch08.bench.txt" 2>&1
  echo "ch08 rc=$?"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$LOGS/gpu.txt"
if has build; then
  cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 > "$LOGS/cmake.log" 2>&1 || { tail -30 "$LOGS/cmake.log"; exit 1; }
  grep -iE "nccl|cuda" "$LOGS/cmake.log" | head -5
  cmake --build $B -j16 > "$LOGS/build.log" 2>&1 || { grep -E "error" -A3 "$LOGS/build.log" | head -60; exit 1; }
  echo "build: ok"
fi
if has test; then
  (cd $B && ctest -L gpu -LE model --output-on-failure -j4 --timeout 300) > "$LOGS/ctest_gpu.log" 2>&1
  grep -E "tests passed|\(Failed\)|\(Timeout\)" "$LOGS/ctest_gpu.log" | head -30
  # CPU-labelled chapter tests that exercise the GPU chapters when they are built (Ctrl-C, bad input).
  (cd $B && ctest -R "Interrupt|BadInput" -LE model --output-on-failure -j4 --timeout 300) > "$LOGS/ctest_chapter.log" 2>&1
  grep -E "tests passed|\(Failed\)|\(Timeout\)" "$LOGS/ctest_chapter.log" | head -10
fi
if has model; then
  [ -f "${LAB_MODEL_DIR:-$HOME/.cache/inference-lab}/SmolLM2-135M-Instruct.Q4_1.gguf" ] || echo "model: SmolLM2 missing, its tests skip"
  (cd $B && ctest -L model --output-on-failure -j4 --timeout 300) > "$LOGS/ctest_model.log" 2>&1
  grep -E "tests passed|\(Failed\)|\(Timeout\)|Skipped" "$LOGS/ctest_model.log" | head -30
  timeout 60 $B/bin/ch08_cuda_kv_cache --model smollm2 --chat "What is the capital of France?" > "$LOGS/chat.txt" 2>&1; echo "chat rc=$?"; cat "$LOGS/chat.txt" | tail -6
  timeout 60 bash scripts/generate.sh $B > "$LOGS/generate.txt" 2>&1; echo "generate.sh rc=$?"; tail -4 "$LOGS/generate.txt"
fi
if has doc; then
  for ch in ch06_cuda_naive ch07_cublas ch08_cuda_kv_cache ch12_tensor_parallel; do
    [ -x $B/bin/$ch ] || { echo "$ch not built"; continue; }
    $B/bin/$ch --doc > "$LOGS/$ch.txt" 2>&1; echo "$ch --doc rc=$?"; cp "$LOGS/$ch.txt" "$FINAL/"
  done
fi
if has sanitize; then
  # A device call ends at 600 s and takes nothing back from a command it kills: leave a snapshot of
  # what has finished in $FINAL shortly before (SNAPSHOT_AT seconds after this script started).
  # (Its output goes to /dev/null, or the call would wait for it; killed when the stage ends.)
  (sleep $(( ${SNAPSHOT_AT:-560} - SECONDS )) &&
    tar czf "$FINAL/sanitize_snapshot.tgz" -C "$LOGS" sanitize) > /dev/null 2>&1 &
  snapshot=$!
  OUT=$LOGS SANITIZE_TIMEOUT=${SANITIZE_TIMEOUT:-400} bash scripts/gpu_sanitize.sh $B | tail -70
  pkill -P $snapshot 2>/dev/null; kill $snapshot 2>/dev/null
  cp "$LOGS/sanitize/summary.txt" "$FINAL/sanitize_summary.txt" 2>/dev/null
fi
if has labs; then
  bash scripts/gpu_labs_check.sh > "$LOGS/labs.txt" 2>&1; echo "labs rc=$?"; cat "$LOGS/labs.txt" | tail -5
fi
if has bench; then
  $B/bin/ch07_cublas --bench --json "$FINAL/ch07.json" > "$LOGS/ch07.bench.txt" 2>&1; echo "ch07 rc=$?"
  ch08_bench
  [ -x $B/bin/ch12_tensor_parallel ] && { $B/bin/ch12_tensor_parallel --bench --json "$FINAL/ch12.json" > "$LOGS/ch12.bench.txt" 2>&1; echo "ch12 rc=$?"; }
  grep -E "ridge|streaming|graph speed-up|TTFT|fused, v[56]" "$LOGS/ch07.bench.txt" "$LOGS/ch08.bench.txt" | head -30
  tail -12 "$LOGS/ch12.bench.txt" 2>/dev/null
fi
if has bench8; then
  ch08_bench
  cp "$LOGS/ch08.bench.txt" "$FINAL/"
  grep -E "streaming|graph speed-up|TTFT|decode @" "$LOGS/ch08.bench.txt" | head -60
fi
if has peers; then
  for shape in smollm2-135m llama2-7b; do
    PYTHONUNBUFFERED=1 timeout $((560 - SECONDS)) python3 scripts/peer_decode.py --shape $shape > "$LOGS/peers_$shape.txt" 2>"$LOGS/peers_$shape.err"
    echo "peers $shape rc=$?"; cat "$LOGS/peers_$shape.txt"; tail -2 "$LOGS/peers_$shape.err"
  done
  cat "$LOGS"/peers_*.txt > "$FINAL/peers.jsonl"
  [ -f "$FINAL/ch08.json" ] && python3 scripts/decode_goals.py "$FINAL/ch08.json" "$FINAL/peers.jsonl"
fi
tar czf "$FINAL/logs_$(echo $STAGES | tr ' ' '_').tgz" -C "$LOGS" . 2>/dev/null
echo "===== done in ${SECONDS}s ====="
