#!/usr/bin/env bash
# The tour's last step: generate text with the best backend this machine has.
#   GPU + CUDA decoder built  -> chapter 8 (CUDA KV-cache decoder)
#   otherwise                 -> chapter 4 (CPU KV-cache decoder)
# With the real SmolLM2 model in the cache it chats; without it, it runs the random `tiny` model.
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
  args=("$bin/ch08_cuda_kv_cache" --model "$model" --prompt "The capital of France is" --max-new-tokens 24)
  echo "\$ ${args[*]}"
  if "${args[@]}"; then exit 0; fi
  echo "generate: the GPU decoder failed; falling back to the CPU one"
fi
if [ ! -x "$bin/ch04_kv_cache" ]; then
  echo "generate: no generation chapter is built yet"
  exit 0
fi
args=("$bin/ch04_kv_cache" --model "$model" --chat "$question" --steps 32)
echo "\$ ${args[*]}"
exec "${args[@]}"
