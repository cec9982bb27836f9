#!/usr/bin/env bash
# Makes the student hand-out: the repository without the lab solutions, building the student
# stubs by default (LAB_IMPL=student).
#   scripts/make_handout.sh OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/make_handout.sh OUT_DIR}
[ ! -e "$out" ] || { echo "make_handout: $out already exists" >&2; exit 1; }
mkdir -p "$out"
# Tracked files only, minus every solution folder.
git ls-files -z | grep -zv '^exercises/[0-9][0-9]_[^/]*/solution/' | xargs -0 cp --parents -t "$out"
sed -i 's/set(LAB_IMPL "solution" CACHE STRING/set(LAB_IMPL "student" CACHE STRING/' "$out/CMakeLists.txt"
sed -i 's/-DLAB_IMPL=solution/-DLAB_IMPL=student/' "$out/lab.sh"
sed -i 's/"LAB_IMPL": "solution"/"LAB_IMPL": "student"/' "$out/CMakePresets.json"
echo "make_handout: $(git ls-files | grep -c '^exercises/.*/solution/') solution files removed; hand-out in $out"
