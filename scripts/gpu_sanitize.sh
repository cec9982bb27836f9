#!/usr/bin/env bash
# Runs the whole GPU test suite under all four compute-sanitizer tools, in one call:
#   memcheck (out-of-bounds and misaligned accesses, leaks), racecheck (shared-memory hazards),
#   initcheck (reads of uninitialised device memory), synccheck (invalid __syncthreads/warp syncs).
# Usage (on the GPU box, after building): scripts/gpu_sanitize.sh [build-dir]   (default build-gpu)
# The executables are the ones ctest lists under the label `gpu`, so a new GPU test file is covered
# without touching this script. The four tools run side by side (one process each; they share the
# GPU). Logs go to ${OUT:-./gpu_out}/sanitize/; the last lines are a table and the verdict.
# Exit status 0 only when every run reports 0 errors and exits 0.
set -uo pipefail
build=${1:-build-gpu}
logs=${OUT:-$PWD/gpu_out}/sanitize
mkdir -p "$logs"
tools=(memcheck racecheck initcheck synccheck)
per_run_timeout=${SANITIZE_TIMEOUT:-420}
command -v compute-sanitizer >/dev/null || { echo "gpu_sanitize: compute-sanitizer not found"; exit 2; }
# The test programs behind the gpu-labelled tests. A test's command may start with a launcher (newer
# CMake runs discovered tests through `cmake -E ...`), so take every argument that is an executable
# file under the build's tests/ folder.
mapfile -t tests < <(ctest --test-dir "$build" -L gpu --show-only=json-v1 | python3 -c '
import json, os, sys
seen = []
for t in json.load(sys.stdin)["tests"]:
    for word in t.get("command", []):
        for arg in [word] + word.split("=")[1:]:  # also -DTEST_EXECUTABLE=<path>
            if "/tests/" in arg and os.path.isfile(arg) and os.access(arg, os.X_OK) and arg not in seen:
                seen.append(arg)
print("\n".join(seen))')
[ ${#tests[@]} -gt 0 ] || { echo "gpu_sanitize: no GPU tests in $build"; exit 2; }
echo "gpu_sanitize: ${#tests[@]} test programs x ${#tools[@]} tools"

run_tool() {  # one tool over every test program, one after another
  local tool=$1 exe name rc errors
  for exe in "${tests[@]}"; do
    name=$(basename "$exe")
    timeout "$per_run_timeout" compute-sanitizer --tool "$tool" --error-exitcode 9 \
      --print-limit 20 "$exe" --gtest_brief=1 > "$logs/${name}_$tool.log" 2>&1
    rc=$?
    errors=$(grep -Eo '(ERROR|RACECHECK) SUMMARY: [0-9]+' "$logs/${name}_$tool.log" | grep -Eo '[0-9]+$' | tail -1)
    printf '%-28s %-10s rc=%-3s errors=%s\n' "$name" "$tool" "$rc" "${errors:-?}"
  done > "$logs/summary_$tool.txt"
}
for tool in "${tools[@]}"; do run_tool "$tool" & done
wait
cat "$logs"/summary_*.txt | sort | tee "$logs/summary.txt"
bad=$(grep -vc 'rc=0 .*errors=0$' "$logs/summary.txt")
echo "gpu_sanitize: $(wc -l < "$logs/summary.txt") runs, $bad not clean"
[ "$bad" -eq 0 ]
