#!/usr/bin/env python3
"""Draws the evaluation curves of one or more training runs, with their 95% bands, as SVG.

Each RUN is a run folder written by `metalearn train`, an example or a reproduce script
(train::fit's metrics.jsonl), or a metrics.jsonl itself. Its evaluation rows, those with
"eval_mean" (and "eval_ci95", the half-width of the 95% interval), give the curve against
"step"; the training rows beside them are skipped. Horizontal reference lines (a target, a
paper's number) come from --line.

Usage:
  curve_figure.py OUT.svg RUN[=LABEL] [RUN[=LABEL] ...] [--title TEXT] [--ylabel TEXT]
                  [--scale S] [--line LABEL=VALUE ...] [--from STEP]
--scale multiplies the values (100 for accuracies in percent); --line values are in the
scaled unit. Only the Python standard library is needed.

Example (the MAML Omniglot curve of benchmarks/results/maml_omniglot.md):
  curve_figure.py docs/images/maml_omniglot_curve.svg <run>=MAML --scale 100 \\
      --ylabel "test accuracy (%)" --line "paper 98.7=98.7" --line "target 98.0=98.0"
"""

import argparse
import json
import math
import os
import sys

from svg_plot import COLOURS, Chart, nice_step


def read_curve(path, scale, first):
    """(steps, means, half-widths) of the evaluation rows of a run folder or metrics file."""
    file = os.path.join(path, "metrics.jsonl") if os.path.isdir(path) else path
    try:
        with open(file) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"curve_figure: cannot read {file}: {e}")
    # A resumed run may repeat a step it evaluated before a restart: keep the last.
    by_step = {}
    for r in rows:
        if "eval_mean" in r and r.get("step", -1) >= first:
            by_step[int(r["step"])] = (scale * float(r["eval_mean"]),
                                       scale * float(r.get("eval_ci95", 0.0)))
    if not by_step:
        sys.exit(f"curve_figure: {file} has no evaluation rows (\"eval_mean\")"
                 + (f" from step {first}" if first else ""))
    steps = sorted(by_step)
    return steps, [by_step[s][0] for s in steps], [by_step[s][1] for s in steps]


def parse_pair(text, what):
    name, sep, value = text.rpartition("=")
    if not sep or not name:
        sys.exit(f"curve_figure: {what} {text!r} is not NAME=VALUE")
    return name, value


def step_label(v):
    return f"{v / 1000:g}k" if v >= 1000 and v % 100 == 0 else str(v)


def svg(curves, lines, title, ylabel):
    x0 = 0
    x1 = max(1, max(c[1][-1] for c in curves))
    lo = min(min(m - h for m, h in zip(c[2], c[3])) for c in curves)
    hi = max(max(m + h for m, h in zip(c[2], c[3])) for c in curves)
    for _, v in lines:
        lo, hi = min(lo, v), max(hi, v)
    if hi == lo:
        hi = lo + 1.0
    step = nice_step(hi - lo)
    ymin = step * math.floor(lo / step)
    ymax = step * math.ceil(hi / step)
    chart = Chart(title, "meta-steps", ylabel, x0, x1, ymin, ymax, step,
                  xtick=step_label if x1 >= 5000 else str)
    for i, (label, steps, mean, half) in enumerate(curves):
        colour = COLOURS[i % len(COLOURS)]
        chart.band(steps, [m - h for m, h in zip(mean, half)],
                   [m + h for m, h in zip(mean, half)], colour)
        chart.polyline(steps, mean, colour, 2)
        chart.legend(colour, 2, f"{label} ({mean[-1]:.4g} ± {half[-1]:.2g})")
    for i, (name, v) in enumerate(lines):
        colour, dash = ("#555", "6,4") if i % 2 == 0 else ("#888", "2,3")
        chart.hline(v, colour, dash=dash)
        chart.legend(colour, 1.2, name, dash=dash)
    return chart.render()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    p.add_argument("out")
    p.add_argument("runs", nargs="+", metavar="RUN[=LABEL]")
    p.add_argument("--title", default="")
    p.add_argument("--ylabel", default="evaluation mean (95% band)")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--line", action="append", default=[], metavar="LABEL=VALUE")
    p.add_argument("--from", dest="first", type=int, default=0, metavar="STEP")
    a = p.parse_args()
    curves = []
    for run in a.runs:
        path, label = run, os.path.basename(os.path.normpath(run))
        if "=" in run and not os.path.exists(run):
            path, label = parse_pair(run, "run")[0], run.rpartition("=")[2]
        curves.append((label, *read_curve(path, a.scale, a.first)))
    lines = []
    for text in a.line:
        name, value = parse_pair(text, "--line")
        try:
            lines.append((name, float(value)))
        except ValueError:
            sys.exit(f"curve_figure: --line {text!r}: {value!r} is not a number")
    title = a.title or "evaluation during training"
    with open(a.out, "w") as f:
        f.write(svg(curves, lines, title, a.ylabel))
    print(f"wrote {a.out}: " + ", ".join(
        f"{c[0]} {c[2][-1]:.4g} ± {c[3][-1]:.2g} at step {c[1][-1]}" for c in curves))


if __name__ == "__main__":
    main()
