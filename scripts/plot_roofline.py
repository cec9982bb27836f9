#!/usr/bin/env python3
"""Draws chapter 1's roofline from its --json output with gnuplot.

usage: plot_roofline.py ch01.json out.png

The plot: attainable FLOP/s = min(peak, I x bandwidth) on log-log axes, the ridge point, the batch
sweep of X(B x D) @ W(D x F), and the whole-model prefill and decode points.
Only the standard library and gnuplot are needed.
"""
import json
import subprocess
import sys


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        data = json.load(f)
    hw = data["hardware"]
    peak = hw["peak_flops"] / 1e12
    bw = hw["bandwidth"] / 1e12
    ridge = hw["ridge"]
    sweep = [(p["intensity"], p["attainable_flops"] / 1e12, p["batch"]) for p in data["sweep"]]
    phases = [(p["intensity"], min(peak, p["intensity"] * bw), p["name"]) for p in data["phases"]]
    lo = min([0.5] + [s[0] / 2 for s in sweep + phases])
    hi = max([ridge * 8] + [s[0] * 2 for s in sweep + phases])

    script = [
        "set terminal pngcairo size 900,560 font 'DejaVu Sans,11'",
        f"set output '{sys.argv[2]}'",
        "set logscale xy",
        "set grid xtics ytics mxtics mytics lc rgb '#dddddd'",
        "set xlabel 'arithmetic intensity I (FLOP/byte)'",
        "set ylabel 'attainable TFLOP/s'",
        f"set title 'Roofline of {hw['name']} ({data['dtype']}): X(B x D) @ W(D x F) and a whole model ({data['model']})' noenhanced",
        f"set xrange [{lo}:{hi}]",
        f"set yrange [{min(0.5, lo * bw / 2)}:{peak * 2}]",
        "set key bottom right",
        f"set arrow from {ridge},{min(0.5, lo * bw / 2)} to {ridge},{peak} nohead dt 2 lc rgb '#888888'",
        f"set label 'ridge {ridge:.1f}' at {ridge * 1.1},{peak / 4}",
        "$sweep << EOD",
        *[f"{i} {f} B={b}" for i, f, b in sweep],
        "EOD",
        "$phases << EOD",
        *[f"{i} {f} {n}" for i, f, n in phases],
        "EOD",
        f"roof(x) = (x * {bw} < {peak}) ? x * {bw} : {peak}",
        "plot roof(x) with lines lw 2 lc rgb '#1f77b4' title 'min(peak, I x bandwidth)', \\",
        "     $sweep using 1:2 with points pt 7 ps 1.3 lc rgb '#d62728' title 'batch sweep', \\",
        "     $sweep using 1:2:3 with labels offset 0,1 notitle, \\",
        "     $phases using 1:2 with points pt 5 ps 1.3 lc rgb '#2ca02c' title 'whole model', \\",
        "     $phases using 1:2:3 with labels offset 0,-1 notitle",
    ]
    subprocess.run(["gnuplot"], input="\n".join(script) + "\n", text=True, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
