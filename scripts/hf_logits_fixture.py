#!/usr/bin/env python3
"""Logits cross-check fixture: HF transformers (code nobody here wrote) runs a model that this
project exported, in fp32, on a few prompts.

Runs on the GPU box (torch + transformers + tokenizers, no internet needed). Steps:
  1. Export the model with this project: lab::export_hf_directory(lab::load_model("smollm2", 0), DIR)
     (fp32 safetensors + config.json + tokenizer.json; works for "tiny" and any --model too).
  2. python3 scripts/hf_logits_fixture.py DIR tests/fixtures/hf_logits_smollm2.json
     (or --prompt-ids "1,2,3" --prompt-ids "4,5" to choose token ids; without it, the default
     texts below are tokenized by HF `tokenizers` from DIR/tokenizer.json).
  3. The C++ test runs the CPU reference on the same ids and requires a relative L2 error
     <= 1e-4 per compared logit vector.

Output JSON (kept under ~2 MB):
  {"how_made", "model_dir_config", "versions", "prompts": [
     {"text"?, "ids": [...], "seq_len": T, "vocab_size": V,
      "last_logits_f32_le_b64": base64 of V little-endian float32 (the last position, exact),
      "positions": [{"pos": p, "argmax": a, "top5_ids": [...], "top5_logits": [...]}, ...],
      "all_logits": [[...V floats...] x T]  (only when T*V <= 200000, e.g. the tiny preset)}]}
"""
import argparse
import base64
import json
import os
import sys

import numpy as np
import torch
import transformers
from transformers import LlamaForCausalLM

DEFAULT_TEXTS = [
    "The capital of France is",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "Once upon a time, in a small village by the sea, there lived",
    "def fibonacci(n):\n    if n < 2:\n        return n\n",
    "1 + 1 = 2, 2 + 2 = 4, 3 + 3 =",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hf_dir")
    ap.add_argument("out_json")
    ap.add_argument("--prompt-ids", action="append", default=[],
                    help="comma-separated token ids; repeat for several prompts")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda; fp32 either way")
    args = ap.parse_args()

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:  # transformers >= 4.56 and 5.x call it dtype; older ones torch_dtype
        model = LlamaForCausalLM.from_pretrained(args.hf_dir, dtype=torch.float32,
                                                 local_files_only=True, attn_implementation="eager")
    except TypeError:
        model = LlamaForCausalLM.from_pretrained(args.hf_dir, torch_dtype=torch.float32,
                                                 local_files_only=True, attn_implementation="eager")
    model.to(args.device).eval()

    prompts = []
    if args.prompt_ids:
        for s in args.prompt_ids:
            prompts.append({"ids": [int(x) for x in s.split(",") if x.strip()]})
    else:
        tok_path = os.path.join(args.hf_dir, "tokenizer.json")
        if not os.path.exists(tok_path):
            sys.exit("no tokenizer.json in the directory: pass --prompt-ids")
        import tokenizers
        tok = tokenizers.Tokenizer.from_file(tok_path)
        for text in DEFAULT_TEXTS:
            prompts.append({"text": text, "ids": tok.encode(text, add_special_tokens=False).ids})

    out_prompts = []
    with torch.no_grad():
        for p in prompts:
            ids = torch.tensor([p["ids"]], dtype=torch.long, device=args.device)
            logits = model(input_ids=ids).logits[0].float().cpu().numpy()  # (T, V)
            T, V = logits.shape
            entry = dict(p)
            entry["seq_len"] = T
            entry["vocab_size"] = V
            entry["last_logits_f32_le_b64"] = base64.b64encode(
                logits[-1].astype("<f4").tobytes()).decode()
            positions = []
            for t in range(T):
                top = np.argsort(-logits[t])[:5]
                positions.append({"pos": t, "argmax": int(top[0]), "top5_ids": [int(i) for i in top],
                                  "top5_logits": [float(logits[t, i]) for i in top]})
            entry["positions"] = positions
            if T * V <= 200000:
                entry["all_logits"] = [[float(x) for x in row] for row in logits]
            out_prompts.append(entry)

    with open(os.path.join(args.hf_dir, "config.json")) as f:
        config = json.load(f)
    out = {
        "how_made": "scripts/hf_logits_fixture.py: transformers LlamaForCausalLM, float32, eager "
                    "attention, TF32 off, on " + args.device + ", from a directory written by "
                    "lab::export_hf_directory",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "numpy": np.__version__},
        "model_dir_config": config,
        "prompts": out_prompts,
    }
    with open(args.out_json, "w") as f:
        json.dump(out, f)
        f.write("\n")
    print(f"wrote {len(out_prompts)} prompts to {args.out_json} ({os.path.getsize(args.out_json)} bytes)")


if __name__ == "__main__":
    main()
