#!/usr/bin/env bash
# The GPU labs (6, 7 and 8) graded both ways on a machine with a CUDA GPU: every test must pass with
# the solutions (-DLAB_IMPL=solution) and fail with the student stubs (-DLAB_IMPL=student).
# Prints one line per lab, e.g. "lab06 solution: 3/3 pass; student: 3/3 fail"; exits non-zero
# unless both halves hold for every lab.
#   scripts/gpu_labs_check.sh            # from the repository root, on the GPU box
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

# The GPU box has no libpcre2-dev; a local copy unpacked into .pcre/ stands in for it.
if [[ -d .pcre ]]; then
  export PKG_CONFIG_PATH="$PWD/.pcre/usr/lib/x86_64-linux-gnu/pkgconfig"
  export PKG_CONFIG_SYSROOT_DIR="$PWD/.pcre"
  export LD_LIBRARY_PATH="$PWD/.pcre/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

labs=(06 07 08)
targets=()
for nn in "${labs[@]}"; do
  for src in tests/lab/test_lab"${nn}"_*.cpp; do
    [[ -e "$src" ]] && targets+=("$(basename "$src" .cpp)")
  done
done
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "gpu_labs_check: no tests/lab/test_lab{06,07,08}_* files" >&2
  exit 2
fi

configure_and_build() {  # <build dir> <solution|student>
  local dir=$1 impl=$2
  mkdir -p "$dir"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DLAB_IMPL="$impl" >"$dir/configure.log" 2>&1 ||
    { echo "gpu_labs_check: configure of $dir failed (see $dir/configure.log)" >&2; return 1; }
  ninja -C "$dir" -j16 "${targets[@]}" >"$dir/build.log" 2>&1 ||
    { echo "gpu_labs_check: build in $dir failed (see $dir/build.log)" >&2; return 1; }
}

# Runs every test executable of lab <nn> in <dir>; prints "<total> <passed> <failed> <skipped>".
count() {  # <build dir> <nn>
  local dir=$1 nn=$2 total=0 passed=0 failed=0 skipped=0 exe log n
  for exe in "$dir"/tests/test_lab"${nn}"_*; do
    [[ -x "$exe" ]] || continue
    log="$dir/$(basename "$exe").log"
    "$exe" --gtest_color=no >"$log" 2>&1
    n=$(grep -oE '^\[==========\] [0-9]+ tests? from .* ran' "$log" | grep -oE '[0-9]+' | head -1)
    total=$((total + ${n:-0}))
    n=$(grep -oE '^\[  PASSED  \] [0-9]+' "$log" | grep -oE '[0-9]+$')
    passed=$((passed + ${n:-0}))
    n=$(grep -oE '^\[  FAILED  \] [0-9]+ tests?, listed below' "$log" | grep -oE '[0-9]+' | head -1)
    failed=$((failed + ${n:-0}))
    n=$(grep -oE '^\[  SKIPPED \] [0-9]+ tests?, listed below' "$log" | grep -oE '[0-9]+' | head -1)
    skipped=$((skipped + ${n:-0}))
    # A crash before the summary counts every test of the file as failed.
    if ! grep -qE '^\[==========\] [0-9]+ tests? from .* ran' "$log"; then
      n=$("$exe" --gtest_list_tests 2>/dev/null | grep -cE '^  ')
      total=$((total + n))
      failed=$((failed + n))
    fi
  done
  echo "$total $passed $failed $skipped"
}

status=0
configure_and_build build-gpu-sol solution || exit 1
configure_and_build build-gpu-stu student || exit 1
for nn in "${labs[@]}"; do
  read -r sol_total sol_pass _ sol_skip < <(count build-gpu-sol "$nn")
  read -r stu_total _ stu_fail stu_skip < <(count build-gpu-stu "$nn")
  line="lab$nn solution: $sol_pass/$sol_total pass; student: $stu_fail/$stu_total fail"
  ((sol_skip + stu_skip > 0)) && line+=" ($((sol_skip + stu_skip)) skipped: no GPU?)"
  echo "$line"
  if ((sol_total == 0 || sol_pass != sol_total || stu_fail != stu_total)); then
    status=1
  fi
done
[[ $status -eq 0 ]] || echo "gpu_labs_check: FAILED (logs: build-gpu-{sol,stu}/test_lab*.log)" >&2
exit $status
