#!/usr/bin/env python3
"""Draws chapter 7's measured batch sweep against the roofline, with gnuplot.

usage: plot_ridge.py ch07.json out.png

ch07.json is what `ch07_cublas --bench --json PATH` (or `--analyze`) writes: the sweep of
X(B x D) @ W(D x F) in fp32, TF32 and bf16, and its "ridge" block. The plot: achieved TFLOP/s
against B on log-log axes, one curve per mode; the bf16 roofline drawn with the roofs measured in
the sweep (solid) and with chapter 1's datasheet roofs (dashed); the measured and the predicted
ridge batches as vertical lines. Only the standard library and gnuplot are needed.
"""
import json
import subprocess
import sys

COLOURS = {"fp32": "#2ca02c", "tf32": "#ff7f0e", "bf16": "#1f77b4"}


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        data = json.load(f)
    d, f_ = data["shape"]["D"], data["shape"]["F"]
    ridge = data["ridge"]
    bf16 = next(r for r in ridge["measured"] if r["dtype"] == "bf16")
    predicted = ridge["predicted"]
    device = data.get("device", "unnamed device")
    if "recorded" in data:
        device += f", recorded {data['recorded']['date']}"

    curves = {}
    for p in data["sweep"]:
        curves.setdefault(p["dtype"], []).append((p["batch"], p["flops"] / p["seconds"] / 1e12))
    modes = [m for m in ("fp32", "tf32", "bf16") if m in curves]
    batches = [b for pts in curves.values() for b, _ in pts]
    lo_b, hi_b = min(batches) / 1.5, max(batches) * 1.5
    top = max(predicted["peak_flops"] / 1e12, bf16["plateau_flops"] / 1e12) * 2.5
    bottom = min(r for pts in curves.values() for _, r in pts) / 2
    label_y = (bottom * top) ** 0.5 / 5  # below the curves, left of the ridge lines

    def ridge_line(batch, text, colour, height):
        return [
            f"set arrow from {batch},{bottom} to {batch},{top} nohead dt 3 lw 1.5 lc rgb '{colour}'",
            f"set label '{text}' at {batch / 1.06},{height} right textcolor rgb '{colour}'",
        ]

    script = [
        "set terminal pngcairo size 960,600 font 'DejaVu Sans,11'",
        f"set output '{sys.argv[2]}'",
        "set logscale x 2",
        "set logscale y 10",
        "set grid xtics ytics mytics lc rgb '#dddddd'",
        "set xlabel 'batch B (rows of X)'",
        "set ylabel 'achieved TFLOP/s'",
        f"set title 'X(B x {d}) @ W({d} x {f_}) on {device}' noenhanced",
        f"set xrange [{lo_b}:{hi_b}]",
        f"set yrange [{bottom}:{top}]",
        "set key top left",
        "set samples 1000",
        # bf16 intensity of the GEMM at batch x: 2xDF FLOPs over 2(xD + DF + xF) bytes.
        f"I(x) = x * {d}.0 * {f_}.0 / (x * {d}.0 + {d}.0 * {f_}.0 + x * {f_}.0)",
        "roof(x, P, beta) = (I(x) * beta < P) ? I(x) * beta : P",
    ]
    # A ridge the GEMM never reaches (its batch is null) gets no line.
    if bf16["batch"] is not None:
        script += ridge_line(bf16["batch"], f"measured ridge B = {bf16['batch']}"
                             f" (I = {bf16['intensity']:.0f} FLOP/byte)", COLOURS["bf16"], label_y)
    if predicted["batch"] is not None:
        script += ridge_line(predicted["batch"], f"chapter 1 predicted B = {predicted['batch']}"
                             f" (I = {predicted['intensity']:.0f})", "#666666", label_y / 1.7)
    for m in modes:
        script += [f"${m} << EOD", *[f"{b} {r}" for b, r in sorted(curves[m])], "EOD"]
    plots = [
        f"roof(x, {predicted['peak_flops'] / 1e12}, {predicted['bandwidth'] / 1e12}) with lines"
        f" dt 2 lw 1.5 lc rgb '#666666' title '{predicted['hardware']} datasheet roofline (bf16)'",
        f"roof(x, {bf16['plateau_flops'] / 1e12}, {bf16['bandwidth'] / 1e12}) with lines lw 1.5"
        " lc rgb '#9ecae1' title 'bf16 roofline from the measured roofs'",
    ]
    plots += [
        f"${m} using 1:2 with linespoints pt 7 ps 1.2 lw 2 lc rgb '{COLOURS[m]}'"
        f" title '{m} measured'"
        for m in modes
    ]
    script.append("plot " + ", \\\n     ".join(plots))
    subprocess.run(["gnuplot"], input="\n".join(script) + "\n", text=True, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
