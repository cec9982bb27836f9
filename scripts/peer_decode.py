#!/usr/bin/env python3
"""PyTorch peers for chapter 8's decode benchmark, run on the GPU box in the same call.

HF transformers LlamaForCausalLM with random weights (bf16) of a preset's shape, offline:
  1. eager generate() (dynamic KV cache);
  2. static KV cache with the forward under torch.compile(mode="reduce-overhead").
Decode tokens/s are measured by differencing two greedy generate() calls of different lengths from
the same prompt (so prefill and compile-time drop out). Prints one JSON line per peer.
"""
import argparse, json, sys, time

import torch

SHAPES = {
    "llama2-7b": dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                      num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                      rope_theta=10000.0, tie_word_embeddings=False),
    "smollm2-135m": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                         num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                         rope_theta=100000.0, tie_word_embeddings=True),
}


def timed_generate(model, prompt, new_tokens, **kw):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = model.generate(prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                         do_sample=False, **kw)
    torch.cuda.synchronize()
    assert out.shape[1] == prompt.shape[1] + new_tokens
    return time.perf_counter() - t0


def decode_rate(model, prompt, short, long, repeats, **kw):
    timed_generate(model, prompt, long, **kw)  # warm-up (and compilation)
    timed_generate(model, prompt, short, **kw)
    best = []
    for _ in range(repeats):
        t_long = timed_generate(model, prompt, long, **kw)
        t_short = timed_generate(model, prompt, short, **kw)
        best.append((long - short) / (t_long - t_short))
    best.sort()
    return best[len(best) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="llama2-7b", choices=SHAPES)
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--peers", default="eager,compiled")
    args = ap.parse_args()
    from transformers import LlamaConfig, LlamaForCausalLM
    import transformers
    cfg = LlamaConfig(**SHAPES[args.shape], max_position_embeddings=4096, pad_token_id=0,
                      bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg)
    model.eval()
    model.generation_config.eos_token_id = None  # random weights: never stop early
    prompt = torch.randint(3, cfg.vocab_size, (1, args.context - 1), device="cuda")
    gpu = torch.cuda.get_device_name()
    with torch.inference_mode():
        if "eager" in args.peers:
            rate = decode_rate(model, prompt, 8, 40, 3)
            print(json.dumps({"peer": "hf_eager_generate", "shape": args.shape, "gpu": gpu,
                              "transformers": transformers.__version__,
                              "tokens_per_second": rate}), flush=True)
        if "compiled" in args.peers:
            try:
                from transformers import CompileConfig
                model.generation_config.compile_config = CompileConfig(
                    fullgraph=True, mode="reduce-overhead")
                kw = dict(cache_implementation="static")
                how = "generate(cache_implementation='static', compile_config=reduce-overhead)"
            except ImportError:
                model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)
                kw = dict(cache_implementation="static")
                how = "torch.compile(model.forward, reduce-overhead) + static cache"
            rate = decode_rate(model, prompt, 16, 144, 3, **kw)
            print(json.dumps({"peer": "hf_static_cache_compiled", "shape": args.shape, "gpu": gpu,
                              "how": how, "tokens_per_second": rate}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
