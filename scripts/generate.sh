#!/usr/bin/env bash
# The tour's last step: a chat with the best backend this machine has.
#   GPU + CUDA decoder built  -> chapter 8 --chat (the CUDA KV-cache decoder, reply streamed)
#   otherwise                 -> chapter 4 --chat (the CPU KV-cache decoder)
# With the real SmolLM2 model in the cache it answers the question; without it, the random `tiny`
# model produces noise (but the whole path runs).
set -euo pipefail
build_dir=${1:-build}
bin="$build_dir/bin"
model_file="${LAB_MODEL_DIR:-$HOME/.cache/inference-lab}/SmolLM2-135M-Instruct.Q4_1.gguf"
question="What is the capital of France?"

if [ -f "$model_file" ]; then model=smollm2; else model=tiny; fi
if [ "$model" = tiny ]; then
  echo "(random weights: run scripts/fetch_model.sh for the real SmolLM2-135M-Instruct)"
fi
if [ -x "$bin/ch08_cuda_kv_cache" ] && command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  args=("$bin/ch08_cuda_kv_cache" --model "$model" --chat "$question" --max-new-tokens 64)
  echo "\$ ${args[*]}"
  set +e
  "${args[@]}"
  rc=$?
  set -e
  # 130: the user pressed Ctrl-C, and the chapter printed what it had; that is not a failure.
  if [ $rc -eq 0 ] || [ $rc -eq 130 ]; then exit $rc; fi
  echo "generate: the GPU decoder failed (status $rc); falling back to the CPU one"
fi
if [ ! -x "$bin/ch04_kv_cache" ]; then
  echo "generate: no generation chapter is built yet"
  exit 0
fi
args=("$bin/ch04_kv_cache" --model "$model" --chat "$question" --steps 32)
echo "\$ ${args[*]}"
exec "${args[@]}"
