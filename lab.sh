#!/usr/bin/env bash
# Inference Lab's two quick-start commands (and a few more):
#   ./lab.sh tour    install what is missing, build, and run every chapter, ending with generation
#   ./lab.sh test    build and run the whole test suite
#   ./lab.sh docs    build the textbook into build/docs/html
# Both are idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")"
build_dir=${LAB_BUILD_DIR:-build}
jobs=${LAB_JOBS:-$(nproc)}

configure_and_build() {
  ./scripts/install_deps.sh
  mkdir -p "$build_dir"
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLAB_IMPL=solution "$@" >"$build_dir/configure.log" 2>&1 \
    || { cat "$build_dir/configure.log"; exit 1; }
  grep -E "CUDA (found|chapters)|nvcc not found" "$build_dir/configure.log" || true
  cmake --build "$build_dir" -j "$jobs"
}

run_tour() {
  ./scripts/install_deps.sh  # python3 and pip first: the model fetch needs them
  ./scripts/fetch_model.sh || echo "tour: the real model could not be fetched; the tour uses random weights"
  configure_and_build
  shopt -s nullglob
  for exe in "$build_dir"/bin/ch[0-9][0-9]_*; do
    echo
    echo "================ $(basename "$exe") ================"
    set +e
    "$exe" --doc
    rc=$?
    set -e
    if [ $rc -eq 77 ]; then echo "(skipped: needs a CUDA GPU)"; elif [ $rc -ne 0 ]; then exit $rc; fi
  done
  echo
  echo "================ text generation ================"
  ./scripts/generate.sh "$build_dir"
}

case "${1:-}" in
  tour) run_tour ;;
  test)
    configure_and_build
    ctest --test-dir "$build_dir" -j "$jobs" --output-on-failure
    ;;
  docs)
    configure_and_build
    cmake --build "$build_dir" --target docs
    ;;
  *)
    echo "usage: ./lab.sh tour|test|docs" >&2
    exit 2
    ;;
esac
