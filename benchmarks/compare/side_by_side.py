#!/usr/bin/python3
"""Side-by-side table of several run_compare.py runs (their .json files).

    side_by_side.py LABEL=run.json [LABEL=run.json ...]

One row per workload and thread count; per run the median metalearn step (ms), the
medians of PyTorch's loop and batched forms and the ratio best PyTorch / metalearn
(medians over all steps of the run's rounds). Each run's ratio uses the PyTorch times
of its own run, since the two sides alternate within a run.
"""
import json
import statistics
import sys


def medians(path):
    with open(path) as f:
        samples = json.load(f)["samples"]
    out = {}
    for key, value in samples.items():
        workload, threads, side = key.split("|")
        if value.get("ms"):
            out.setdefault((workload, int(threads)), {})[side] = statistics.median(value["ms"])
    return out


def fmt(ms):
    return "-" if ms is None else (f"{ms:.1f}" if ms >= 10 else f"{ms:.3f}")


def main(argv):
    runs = [(a.split("=", 1)[0], medians(a.split("=", 1)[1])) for a in argv]
    keys = []
    for _, m in runs:
        keys += [k for k in m if k not in keys]
    head = "| workload | threads |" + "".join(
        f" {label}: metalearn ms | {label}: PyTorch loop / batched ms | {label}: best PyTorch / ml |"
        for label, _ in runs)
    print(head)
    print("|---|---|" + "---|---|---|" * len(runs))
    for workload, threads in keys:
        row = f"| {workload} | {threads} |"
        for _, m in runs:
            cell = m.get((workload, threads), {})
            ml = cell.get("metalearn")
            loop, batched = cell.get("pytorch_loop"), cell.get("pytorch_batched")
            best = min(x for x in (loop, batched) if x is not None) if (loop or batched) else None
            ratio = f"{best / ml:.2f}x" if ml and best else "-"
            row += f" {fmt(ml)} | {fmt(loop)} / {fmt(batched)} | {ratio} |"
        print(row)


if __name__ == "__main__":
    main(sys.argv[1:])
