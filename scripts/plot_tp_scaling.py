#!/usr/bin/env python3
"""Draws chapter 12's scaling plot from its JSON with gnuplot.

usage: plot_tp_scaling.py prediction.json out.png [measured.json]

prediction.json: `ch12_tensor_parallel --predict --json ...` (the cost model, no GPU needed).
measured.json (optional): `ch12_tensor_parallel --bench --json ...` from a multi-GPU machine; its
points are drawn beside the predicted curves. Decode tokens/s against the number of GPUs N, one
curve per model, with the ideal N-fold line for reference.
Only the standard library and gnuplot are needed.
"""
import json
import os
import subprocess
import sys


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        prediction = json.load(f)["prediction"]
    measured = []
    if len(sys.argv) == 4 and os.path.exists(sys.argv[3]):
        with open(sys.argv[3], encoding="utf-8") as f:
            data = json.load(f)
        if not data.get("emulated", False):  # emulated ranks share one GPU: not a scaling point
            measured = [m for m in data.get("measured", []) if "tokens_per_second" in m]

    models = []
    for row in prediction["rows"]:
        if "tokens_per_second" in row and row["model"] not in models:
            models.append(row["model"])
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    script = [
        "set terminal pngcairo size 900,560 font 'DejaVu Sans,11'",
        f"set output '{sys.argv[2]}'",
        "set logscale xy 2",
        "set grid xtics ytics lc rgb '#dddddd'",
        "set xlabel 'GPUs N (tensor parallel)'",
        "set ylabel 'decode tokens/s (batch 1)'",
        "set xtics (1, 2, 4, 8)",
        "set xrange [0.8:10]",
        f"set title \"Predicted decode rate: {prediction['hardware']}, {prediction['link']}\"",
        "set key bottom right",
    ]
    plots = []
    for i, model in enumerate(models):
        rows = [r for r in prediction["rows"] if r["model"] == model and "tokens_per_second" in r]
        rows.sort(key=lambda r: r["world_size"])
        color = colors[i % len(colors)]
        script += [f"$p{i} << EOD", *[f"{r['world_size']} {r['tokens_per_second']}" for r in rows],
                   "EOD"]
        base = rows[0]["tokens_per_second"] / rows[0]["world_size"]
        script += [f"$i{i} << EOD", *[f"{r['world_size']} {base * r['world_size']}" for r in rows],
                   "EOD"]
        plots.append(f"$p{i} using 1:2 with linespoints lw 2 pt 7 lc rgb '{color}' "
                     f"title '{model}: cost model'")
        plots.append(f"$i{i} using 1:2 with lines dt 2 lc rgb '{color}' "
                     f"title '{model}: N x one GPU (no all-reduce, nothing replicated)'")
        points = sorted((m["world_size"], m["tokens_per_second"]) for m in measured
                        if m["model"] == model)
        if points:
            script += [f"$m{i} << EOD", *[f"{n} {t}" for n, t in points], "EOD"]
            plots.append(f"$m{i} using 1:2 with points pt 5 ps 1.6 lc rgb '{color}' "
                         f"title '{model}: measured'")
    script.append("plot " + ", \\\n     ".join(plots))
    subprocess.run(["gnuplot"], input="\n".join(script) + "\n", text=True, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
