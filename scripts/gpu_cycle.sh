#!/usr/bin/env bash
# One device call for the CUDA chapters: build, GPU tests, chapter runs, benchmarks, peers.
# Usage on the GPU box: scripts/gpu_cycle.sh [stages...]  (stages: build test doc bench peers sanitize)
# Logs and JSON go to $OUT (or ./gpu_out). Prints a short summary last.
set -uo pipefail
FINAL=${OUT:-$PWD/gpu_out}; OUT=/tmp/gpu_logs; mkdir -p "$OUT" "$FINAL"  # all logs; a few are copied to $FINAL
STAGES=${*:-build test doc bench peers}
B=build-gpu
# A GPU box without libpcre2-dev (needed by common/): a carried copy in .pcre/ (see the report).
if [ -d .pcre ]; then
  export PKG_CONFIG_PATH=$PWD/.pcre/usr/lib/x86_64-linux-gnu/pkgconfig PKG_CONFIG_SYSROOT_DIR=$PWD/.pcre
  export LD_LIBRARY_PATH=$PWD/.pcre/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
has() { [[ " $STAGES " == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
if has build; then
  cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 > "$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
  cmake --build $B -j16 --target ch06_cuda_naive ch07_cublas ch08_cuda_kv_cache test_device \
    test_kernels_elementwise test_matmul_gemv test_attention test_gpu_chain ${EXTRA_TARGETS:-} > "$OUT/build.log" 2>&1 \
    || { grep -E "error" -A3 "$OUT/build.log" | head -60; exit 1; }
fi
if has test; then
  (cd $B && ctest -L gpu --output-on-failure -j1 --timeout 300) > "$OUT/ctest.log" 2>&1
  grep -E "tests passed|Failed|FAILED|\*\*\*" "$OUT/ctest.log" | head -30
fi
if has doc; then
  for ch in ch06_cuda_naive ch07_cublas ch08_cuda_kv_cache; do
    $B/bin/$ch --doc > "$OUT/$ch.doc.txt" 2>&1; echo "$ch --doc rc=$?"
  done
fi
if has bench; then
  $B/bin/ch06_cuda_naive --json "$OUT/ch06.json" > "$OUT/ch06.bench.txt" 2>&1; echo "ch06 rc=$?"
  $B/bin/ch07_cublas --bench --json "$OUT/ch07.json" > "$OUT/ch07.bench.txt" 2>&1; echo "ch07 rc=$?"
  $B/bin/ch08_cuda_kv_cache --bench --json "$OUT/ch08.json" > "$OUT/ch08.bench.txt" 2>&1; echo "ch08 rc=$?"
fi
if has peers; then
  PYTHONUNBUFFERED=1 timeout $((575 - SECONDS)) python3 scripts/peer_decode.py --shape llama2-7b > "$OUT/peers.txt" 2>"$OUT/peers.err"; echo "peers rc=$?"
  tail -5 "$OUT/peers.err"
fi
if has sanitize; then
  for t in test_kernels_elementwise test_matmul_gemv test_attention test_gpu_chain; do
    for tool in memcheck racecheck; do
      timeout 150 compute-sanitizer --tool $tool --error-exitcode 9 $B/tests/$t --gtest_brief=1 > "$OUT/san_${t}_$tool.txt" 2>&1
      echo "sanitizer $tool $t rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/san_${t}_$tool.txt" | tail -1)"
    done
  done | tee "$OUT/sanitizer.txt"
fi
echo "===== summary ====="
cat "$OUT/gpu.txt"
grep -E "tests passed|tests failed" "$OUT/ctest.log" 2>/dev/null
for f in ch06.bench ch08.bench; do [ -f "$OUT/$f.txt" ] && grep -E "forward:|decode @|TTFT|streaming|lm_head|gate_up" "$OUT/$f.txt"; done
[ -f "$OUT/ch07.bench.txt" ] && grep -E "^ +(1|64|256|1024) " "$OUT/ch07.bench.txt"
cat "$OUT/peers.txt" 2>/dev/null
# At most 8 files come back from the device: the ones the report needs.
for f in ctest.log sanitizer.txt ch08.bench.txt ch08.json ch06_cuda_naive.doc.txt ch07_cublas.doc.txt ch08_cuda_kv_cache.doc.txt peers.txt; do
  [ -f "$OUT/$f" ] && cp "$OUT/$f" "$FINAL/"
done
