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

from svg_plot import COLOURS, Chart, nice_step


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
    ymax = max(max(c) for c in curves.values())
    ymin = min(0.0, min(min(c) for c in curves.values()))
    step = nice_step(ymax - ymin)
    ymax = step * (int(ymax / step) + 1)
    chart = Chart(title, xlabel, "mean cumulative regret", 0, x[-1], ymin, ymax, step)
    for i, (name, c) in enumerate(curves.items()):
        colour = "#d62728" if name == "RL^2" else COLOURS[i % len(COLOURS)]
        width = 3 if name == "RL^2" else 1.6
        chart.polyline([0] + x, [0.0] + c, colour, width)
        chart.legend(colour, width, f"{name} ({c[-1]:.2f})")
    return chart.render()


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
