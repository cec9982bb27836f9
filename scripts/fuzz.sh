#!/usr/bin/env bash
# Builds the libFuzzer targets with clang under ASan + UBSan and runs each for a bounded time.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 60)
# Any crash, leak, sanitizer report or timeout fails the script; the input that caused it is
# saved under build-fuzz/findings/ and should become a regression test in tests/cpu/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=build-fuzz
jobs=${LAB_JOBS:-$(nproc)}
# clang and its libFuzzer runtime, installed here rather than in install_deps.sh: only fuzzing needs them.
if ! command -v clang++ >/dev/null || ! dpkg-query -W -f='${Status}' libclang-rt-dev 2>/dev/null | grep -q "ok installed"; then
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends clang libclang-rt-dev >/dev/null
fi
mkdir -p "$build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DLAB_FUZZ=ON -DLAB_ENABLE_CUDA=OFF -DLAB_BUILD_TESTS=OFF >"$build/configure.log" 2>&1 \
  || { cat "$build/configure.log"; exit 1; }
targets="fuzz_gguf fuzz_safetensors fuzz_hf_config fuzz_tokenizer"
# shellcheck disable=SC2086
cmake --build "$build" -j "$jobs" --target $targets fuzz_make_seeds >"$build/build.log" 2>&1 \
  || { tail -40 "$build/build.log"; exit 1; }
rm -rf "$build/seeds" && "$build/tests/fuzz/fuzz_make_seeds" "$build/seeds" >/dev/null
mkdir -p "$build/findings"
status=0
for t in $targets; do
  corpus="$build/corpus/${t#fuzz_}"
  mkdir -p "$corpus"
  log="$build/$t.log"
  if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
     "$build/tests/fuzz/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
       -timeout=10 -max_len=65536 -print_final_stats=1 -artifact_prefix="$build/findings/$t-" \
       "$corpus" "$build/seeds/${t#fuzz_}" >"$log" 2>&1; then
    runs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" "$log" | grep -oE "[0-9]+$" || echo "?")
    echo "fuzz: $t: $runs executions in ${seconds}s, no crash"
  else
    echo "fuzz: $t FAILED; input saved in $build/findings/:" >&2
    grep -E "ERROR|SUMMARY|runtime error|==[0-9]+==" "$log" | head -20 >&2
    status=1
  fi
done
exit $status
