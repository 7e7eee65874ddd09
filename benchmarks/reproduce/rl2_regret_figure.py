#!/usr/bin/env python3
"""Draws the mean cumulative regret of an RL^2 run beside the baseline agents, as SVG.

Inputs, both measured on the same test environments (seed, test split, trials 0..n-1):
  - a baseline CSV written by `rl2_baselines --curves DIR` (benchmarks/reproduce/
    rl2_baselines.sh): bandit_k<K>_n<N>.csv (a row per pull) or mdp_n<N>.csv (a row per
    episode), a column of mean cumulative regret per agent;
  - the evaluation.json of an RL^2 run, written by `metalearn evaluate RUN --episodes
    <trials>`: the mean reward of every step over the trials, with the bandits' mean best
    arm (best_mean) or the MDPs' optimal expected return per episode (optimal_episode).

The RL^2 curve uses the baselines' definition: regret after row j is j * best - the mean
reward summed over the first j rows' steps.

Usage: rl2_regret_figure.py BASELINES.csv RUN/evaluation.json OUT.svg [--title TEXT]
Only the Python standard library is needed.
"""

import argparse
import csv
import json
import sys

COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def read_baselines(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        sys.exit(f"rl2_regret_figure: {path} holds no curve")
    header, body = rows[0], rows[1:]
    x = [int(r[0]) for r in body]
    curves = {name: [float(r[i]) for r in body] for i, name in enumerate(header) if i > 0}
    return header[0], x, curves


def rl2_curve(path, rows):
    with open(path) as f:
        e = json.load(f)
    rewards = e.get("mean_rewards")
    if not rewards:
        sys.exit(f"rl2_regret_figure: {path} has no mean_rewards (run `metalearn evaluate` "
                 "with a build that writes them)")
    if len(rewards) % rows != 0:
        sys.exit(f"rl2_regret_figure: {len(rewards)} steps in {path} do not split into the "
                 f"baselines' {rows} rows")
    group = len(rewards) // rows
    best = e["best_mean"] if group == 1 else e["optimal_episode"]
    out, total = [], 0.0
    for j in range(rows):
        total += sum(rewards[j * group:(j + 1) * group])
        out.append((j + 1) * best - total)
    return out, e


def nice_step(span):
    raw = span / 5.0
    for p in range(-3, 6):
        for m in (1, 2, 2.5, 5):
            step = m * 10 ** p
            if step >= raw:
                return step
    return raw


def label(name):
    """The baselines' CSV columns as legend entries."""
    for prefix, text in (("ucb1_c", "UCB1, c "), ("eps_greedy_", "eps-greedy, eps ")):
        if name.startswith(prefix):
            return text + name[len(prefix):]
    return {"ucb1_textbook": "UCB1 (textbook)", "thompson": "Thompson sampling",
            "psrl": "PSRL", "psrl_prior_mean_1": "PSRL, prior mean 1"}.get(name, name)


def merge_equal(curves):
    """Draws a curve equal to an earlier one once, under both names."""
    out = {}
    for name, c in curves.items():
        same = next((k for k, v in out.items() if v == c), None)
        if same is None:
            out[name] = c
        else:
            out[f"{same} = {name}"] = out.pop(same)
    return out


def svg(xlabel, x, curves, title):
    w, h, left, right, top, bottom = 800, 440, 64, 290, 40, 50
    pw, ph = w - left - right, h - top - bottom
    ymax = max(max(c) for c in curves.values())
    ymin = min(0.0, min(min(c) for c in curves.values()))
    step = nice_step(ymax - ymin)
    ymax = step * (int(ymax / step) + 1)
    x0, x1 = 0, x[-1]

    def px(v):
        return left + pw * (v - x0) / (x1 - x0)

    def py(v):
        return top + ph * (1.0 - (v - ymin) / (ymax - ymin))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{left + pw / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>']
    tick = ymin
    while tick <= ymax + 1e-9:
        y = py(tick)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>')
        tick += step
    xstep = max(1, int(nice_step(x1 - x0)))
    for v in range(0, x1 + 1, xstep):
        out.append(f'<text x="{px(v):.1f}" y="{top + ph + 18}" text-anchor="middle">{v}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" '
               'stroke="#333"/>')
    out.append(f'<text x="{left + pw / 2}" y="{h - 10}" text-anchor="middle">{xlabel}</text>')
    out.append(f'<text transform="translate(16,{top + ph / 2}) rotate(-90)" '
               'text-anchor="middle">mean cumulative regret</text>')
    for i, (name, c) in enumerate(curves.items()):
        colour = "#d62728" if name == "RL^2" else COLOURS[i % len(COLOURS)]
        width = 3 if name == "RL^2" else 1.6
        points = " ".join(f"{px(a):.1f},{py(b):.2f}" for a, b in zip([0] + x, [0.0] + c))
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                   f'stroke-width="{width}"/>')
        ly = top + 14 + 18 * i
        out.append(f'<line x1="{left + pw + 14}" y1="{ly - 4}" x2="{left + pw + 38}" '
                   f'y2="{ly - 4}" stroke="{colour}" stroke-width="{width}"/>')
        out.append(f'<text x="{left + pw + 44}" y="{ly}">{name} ({c[-1]:.2f})</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("baselines")
    p.add_argument("evaluation")
    p.add_argument("out")
    p.add_argument("--title", default="")
    a = p.parse_args()
    xlabel, x, curves = read_baselines(a.baselines)
    rl2, e = rl2_curve(a.evaluation, len(x))
    curves = merge_equal({"RL^2": rl2, **{label(k): v for k, v in curves.items()}})
    title = a.title or (f"mean cumulative regret over {e['episodes']} test "
                        f"{'bandits' if xlabel == 'pull' else 'MDPs'}")
    with open(a.out, "w") as f:
        f.write(svg(xlabel, x, curves, title))
    print(f"wrote {a.out}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in curves.items()))


if __name__ == "__main__":
    main()
