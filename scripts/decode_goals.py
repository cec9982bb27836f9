#!/usr/bin/env python3
"""Issue #5's decode goals, from one device call: chapter 8's benchmark and the PyTorch peers.

    scripts/decode_goals.py ch08.json [peers.jsonl]

ch08.json is `ch08_cuda_kv_cache --bench --json`; peers.jsonl the lines scripts/peer_decode.py
prints (one JSON object a peer). Both must come from the same call on the same GPU: the ratios
mean nothing across machines. Prints each goal with its measured value and met / not met.
The decoder's default version is the row the benchmark flags "default" (older files: the best).
"""
import json
import sys


def default_row(decode, model):
    rows = [r for r in decode if r["model"] == model]
    if not rows:
        return None
    flagged = [r for r in rows if r.get("default")]
    return flagged[0] if flagged else max(rows, key=lambda r: r["graph"]["tokens_per_second"])


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit(__doc__)
    with open(argv[1]) as f:
        bench = json.load(f)
    peers = {}
    if len(argv) == 3:
        with open(argv[2]) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    p = json.loads(line)
                    peers[(p["shape"], p["peer"])] = p["tokens_per_second"]
    decode = bench["decode"]
    llama = default_row(decode, "llama2-7b")
    smol = default_row(decode, "smollm2 (real)") or default_row(decode, "smollm2-135m")
    print(f"device: {bench['device']}, streaming read {bench['stream_read']['bytes_per_second'] / 1e9:.0f} GB/s")
    goals = []  # (what, measured, goal, text)
    if llama:
        share = llama["graph"]["share_of_stream_read"]
        tps = llama["graph"]["tokens_per_second"]
        print(f"llama2-7b default ({llama['version']}): {tps:.1f} tokens/s, "
              f"{llama['graph']['seconds_per_token'] * 1e3:.3f} ms/token (graph)")
        goals.append(("llama2-7b decode, share of the read (graph)", share, 0.85, f"{100 * share:.1f}%"))
        for peer, goal in (("hf_eager_generate", 10.0), ("hf_static_cache_compiled", 1.2)):
            if ("llama2-7b", peer) in peers:
                ratio = tps / peers[("llama2-7b", peer)]
                goals.append((f"llama2-7b vs {peer} ({peers[('llama2-7b', peer)]:.1f} tokens/s)",
                              ratio, goal, f"{ratio:.2f}x"))
    if smol:
        tps = smol["graph"]["tokens_per_second"]
        print(f"{smol['model']} default ({smol['version']}): {tps:.0f} tokens/s graph, "
              f"{smol['no_graph']['tokens_per_second']:.0f} without")
        goals.append(("SmolLM2 graph speed-up", smol["graph_speedup"], 2.0, f"{smol['graph_speedup']:.2f}x"))
        key = ("smollm2-135m", "hf_static_cache_compiled")
        if key in peers:
            ratio = tps / peers[key]
            goals.append((f"SmolLM2 vs hf_static_cache_compiled ({peers[key]:.1f} tokens/s)", ratio, 1.5,
                          f"{ratio:.2f}x"))
    for t in bench.get("ttft", []):
        print(f"TTFT {t['model']}, {t['context']} tokens: {t['seconds'] * 1e3:.2f} ms")
    print(f"\n{'goal':<62} {'measured':>9} {'needs':>7}  verdict")
    for what, value, goal, text in goals:
        need = f"{100 * goal:.0f}%" if goal < 1 else f"{goal:g}x"
        print(f"{what:<62} {text:>9} {need:>7}  {'met' if value >= goal else 'NOT met'}")


if __name__ == "__main__":
    main(sys.argv)
