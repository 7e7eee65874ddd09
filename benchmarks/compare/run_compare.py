#!/usr/bin/python3
"""Runs the metalearn / PyTorch comparison and writes the result table.

Called by benchmarks/compare.sh (which installs PyTorch and builds bench_compare).

1. Gradient agreement: for every workload, `bench_compare dump` writes its initial
   parameters and its task batch; `workloads.py untie` moves the batch's inputs away
   from ties (below); `bench_compare dump ... f32|f64 <inputs>` writes metalearn's
   float32 and float64 meta-gradients at those inputs, and workloads.py recomputes the
   gradient there in PyTorch (every form; float32 and float64).

   Ties. The meta-gradient jumps where a ReLU's sign or a max-pool window's argmax
   changes. At a choice whose float64 values lie within float32 rounding of a tie,
   two float32 computations (metalearn's and PyTorch's, or one library on two
   instruction sets) can choose differently, and their gradients then differ by a
   jump (2e-2 on ProtoNet 5-way 1-shot) that says nothing about either. So the check
   runs at inputs where no choice is that close: untie runs the float64 forward passes
   of PyTorch's loop form (inner loops included) at the dumped parameters and inputs,
   finds every choice within a margin delta of changing (a ReLU input |v| < delta; a
   2x2 max-pool window whose largest value is above -delta but below delta, or less
   than delta above the second largest). delta, per layer of each forward pass, is the
   larger of 2^-16 times the RMS of the layer's values (~1.5e-5 after batch norm) and
   twice PyTorch's largest float32 error on them (the same passes run in float32).
   Untie re-draws uniform noise (1/16 of the input's RMS) on just the inputs such a
   choice reads: the window's receptive field, or the MLP sample. It repeats, round by
   round with a fixed seed per round, until no choice is within delta (the glyph
   images' blank backgrounds are exact ties at first, so the first round dithers
   them). Both sides then read the same float32 inputs, and the float64 runs use the
   same values. With every choice at least delta from changing, any float32
   computation whose rounding stays below delta makes float64's choices, so its
   gradient differs from the float64 one by rounding alone, whichever side's rounding
   would have broken a tie.
   Untie stops after 100 rounds. Verdict per workload ("agree"): metalearn's float32
   gradient within 1e-4 (relative) of PyTorch's float64 one, and metalearn's float64
   gradient within 1e-8 of every PyTorch float64 form. Choices that untie left within
   delta do not change an "agree": a choice flipped by float32 rounding adds a jump to
   one side, which can make correct gradients differ but not make a wrong gradient
   match (the table counts them). Where the gradients differ with choices left within
   delta, the verdict is "UNDECIDED" (the flips may be the difference); with none left,
   "DISAGREE": a wrong gradient, or a float32 kernel whose rounding exceeds delta.
   PyTorch's own float32 errors are shown beside it as the yardstick.
2. Timing: rounds x workloads x thread counts; in each cell the sides run one after
   the other in fresh processes, in an order rotated every round. Each process runs
   one warm-up step, then steps until it has at least --min-iters steps and
   --min-seconds of them, and reports every step's wall time and its memory.
   The table shows the median over all steps of all rounds.
3. Memory: each process reads VmRSS after set-up (model and data built), resets the
   kernel's peak-RSS mark (writing 5 to /proc/self/clear_refs) and reads VmHWM after
   the steps: "peak" is the whole process's peak RSS during the steps (PyTorch's
   includes ~its shared libraries), "increment" is peak minus the RSS before the
   first step, i.e. what the steps themselves needed (graphs, workspaces, allocator
   caches). Medians over the rounds.
"""

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS_PY = os.path.join(HERE, "..", "pytorch", "workloads.py")

TARGETS = {  # workload -> (min speed-up vs loop, min speed-up vs best batched form)
    "sinusoid_maml2": (20.0, 5.0),
    "sinusoid_maml1": (20.0, 5.0),
    "sinusoid_reptile5": (20.0, 5.0),
    "omniglot_maml_paper": (1.5, 1.5),
    "omniglot_maml_torchbench": (1.5, 1.5),
    "protonet_60w5s": (1.5, 1.5),
    "protonet_5w1s": (1.5, 1.5),
    "matching_5w1s": (2.0, 2.0),
    "matching_20w1s": (2.0, 2.0),
    "matching_fce_5w1s": (2.0, 2.0),
    "matching_fce_20w1s": (2.0, 2.0),
}


def run_json(cmd, timeout=900, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    try:
        return json.loads(line), p
    except json.JSONDecodeError:
        sys.stderr.write(f"command failed: {' '.join(cmd)}\n{p.stdout}\n{p.stderr}\n")
        raise


def python_forms(py):
    out = subprocess.run([py, WORKLOADS_PY, "list"], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}


def lscpu_field(name):
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return "?"
    for line in out.splitlines():
        if line.split(":")[0].strip() == name:
            return line.split(":", 1)[1].strip()
    return "?"


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def reference(wl):
    """The PyTorch workload a metalearn workload is compared with: a `_within` variant
    (Maml's threads_within_tasks) runs the same computation as its base workload."""
    return wl[:-len("_within")] if wl.endswith("_within") else wl


def dump_inputs_digest(path):
    """SHA-256 of a dump's "param." and "task." records (its inputs, not its gradient)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        magic = f.read(8)
        size = 4 if magic == b"MLCMP032" else 8
        (count,) = struct.unpack("<I", f.read(4))
        for _ in range(count):
            (n,) = struct.unpack("<I", f.read(4))
            name = f.read(n)
            (rank,) = struct.unpack("<I", f.read(4))
            dims = f.read(8 * rank)
            data = f.read(size * math.prod(struct.unpack(f"<{rank}q", dims)))
            if not name.startswith(b"grad."):
                h.update(name + dims + data)
    return h.hexdigest()


def untied_inputs(driver, py, wl, tmp, cache):
    """The inputs file of workload wl's check and untie's report. With a cache
    directory, a workload whose initial parameters and batch are those cached reuses
    the cached result (e.g. another build of the same commit)."""
    base = os.path.join(tmp, wl)
    subprocess.run([driver, "dump", wl, base + ".orig"], check=True)
    if cache:
        os.makedirs(cache, exist_ok=True)
        key = os.path.join(cache, reference(wl))
        try:
            if dump_inputs_digest(key + ".orig") == dump_inputs_digest(base + ".orig"):
                with open(key + ".json") as f:
                    return key + ".in", json.load(f)
        except OSError:
            pass
    untie, _ = run_json([py, WORKLOADS_PY, "untie", reference(wl), base + ".orig", base + ".in"],
                        timeout=3600)
    if cache:
        shutil.copyfile(base + ".orig", key + ".orig")
        shutil.copyfile(base + ".in", key + ".in")
        with open(key + ".json", "w") as f:
            json.dump(untie, f)
    return base + ".in", untie


def verdict(res):
    """agree / DISAGREE, or UNDECIDED where the gradients differ and untie left choices
    within the margin."""
    if res["ok"]:
        return "agree"
    return "UNDECIDED" if res["selections"]["near"] else "DISAGREE"


def check_gradients(driver, py, workloads, cache=""):
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for wl in workloads:
            base = os.path.join(tmp, wl)
            inputs, untie = untied_inputs(driver, py, wl, tmp, cache)
            subprocess.run([driver, "dump", wl, base + ".f32", "f32", inputs], check=True)
            subprocess.run([driver, "dump", wl, base + ".f64", "f64", inputs], check=True)
            res, _ = run_json([py, WORKLOADS_PY, "check", reference(wl), base + ".f32",
                               base + ".f64"])
            res["untie"] = untie
            results[wl] = res
            forms = ", ".join(f"{k} {max(v['max_rel_err'], v['whole_rel_err']):.1e}"
                              for k, v in res["forms"].items())
            print(f"  check {wl}: {verdict(res)} (untie: "
                  f"{untie['near_per_round'][0]} near ties, {untie['rounds']} rounds, "
                  f"{untie['values_moved']} values moved; {forms})", flush=True)
    return results


def fmt_ms(v):
    return "-" if v is None else (f"{v:.3f}" if v < 10 else f"{v:.1f}")


def fmt_ratio(v):
    return "-" if v is None else f"{v:.2f}x"


def fmt_mb(kb):
    return "-" if kb is None else f"{kb / 1024:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--driver", required=True, help="path of the bench_compare binary")
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--min-iters", type=int, default=5)
    ap.add_argument("--min-seconds", type=float, default=1.5)
    ap.add_argument("--max-seconds", type=float, default=8.0,
                    help="a process stops after this long once it has 2 steps")
    ap.add_argument("--workloads", default="", help="comma-separated subset")
    ap.add_argument("--out", default="", help="markdown file to write")
    ap.add_argument("--skip-check", action="store_true")
    ap.add_argument("--check-only", action="store_true", help="the gradient check alone")
    ap.add_argument("--untie-cache", default="",
                    help="directory keeping each workload's untied inputs, reused while its "
                    "initial dump is unchanged (e.g. by a second build of the same commit)")
    args = ap.parse_args()

    forms = python_forms(args.python)
    if args.workloads:
        workloads = args.workloads.split(",")
    else:  # PyTorch's workloads, each followed by the driver's variants of it
        listed = subprocess.run([args.driver, "list"], capture_output=True, text=True,
                                check=True).stdout.split()
        workloads = [v for w in forms for v in [w] + [x for x in listed
                                                      if x != w and reference(x) == w]]
    threads = [int(t) for t in args.threads.split(",")]
    load_start = loadavg()
    t_start = time.time()

    samples = {}  # (wl, threads, side) -> {"ms": [...], "peak": [...], "inc": [...]}
    torch_version = "?"
    for r in range(0 if args.check_only else args.rounds):
        print(f"round {r + 1}/{args.rounds} (load {loadavg()})", flush=True)
        for wl in workloads:
            for th in threads:
                sides = ["metalearn"] + [f"pytorch_{f}" for f in forms[reference(wl)]]
                k = r % len(sides)
                for side in sides[k:] + sides[:k]:
                    common = [str(th), str(args.min_iters), str(args.min_seconds),
                              str(args.max_seconds)]
                    # PyTorch's OpenMP pool and OpenBLAS get the same thread count.
                    env = dict(os.environ, OMP_NUM_THREADS=str(th), OPENBLAS_NUM_THREADS=str(th))
                    if side == "metalearn":
                        cmd = [args.driver, "time", wl] + common
                    else:
                        cmd = [args.python, WORKLOADS_PY, "time", reference(wl),
                               side.split("_", 1)[1]] + common
                    res, _ = run_json(cmd, env=env)
                    torch_version = res.get("torch", torch_version)
                    s = samples.setdefault((wl, th, side), {"ms": [], "peak": [], "inc": []})
                    s["ms"] += res["ms"]
                    s["peak"].append(res["rss_peak_kb"])
                    s["inc"].append(res["rss_peak_kb"] - res["rss_before_kb"])
                    print(f"  {wl:26s} t={th} {side:17s} median {statistics.median(res['ms']):9.3f} ms"
                          f"  ({len(res['ms'])} steps, peak {res['rss_peak_kb'] / 1024:.0f} MB)",
                          flush=True)
    load_end = loadavg()
    minutes = (time.time() - t_start) / 60
    if args.out and samples:
        raw = {f"{wl}|{th}|{side}": v for (wl, th, side), v in samples.items()}
        with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
            json.dump({"load_start": load_start, "load_end": load_end, "samples": raw}, f)
    render(args, workloads, threads, samples, {}, torch_version, load_start, load_end, minutes)
    checks = {}
    if not args.skip_check:
        print("gradient agreement (relative L2 error per parameter tensor, worst):", flush=True)
        checks = check_gradients(args.driver, args.python, workloads, args.untie_cache)

    return render(args, workloads, threads, samples, checks, torch_version, load_start, load_end,
                  minutes)


def render(args, workloads, threads, samples, checks, torch_version, load_start, load_end,
           minutes):

    def med(wl, th, side, key="ms"):
        s = samples.get((wl, th, side))
        return statistics.median(s[key]) if s else None

    def quart(wl, th, side):
        s = samples.get((wl, th, side))
        if not s:
            return "-"
        lo = fmt_ms(min(s["ms"]))
        if len(s["ms"]) < 4:
            return f"{lo} / -"
        q = statistics.quantiles(s["ms"], n=4)
        return f"{lo} / {fmt_ms(q[0])}-{fmt_ms(q[2])}"

    def min_ratio(wl, th, side):
        s, m = samples.get((wl, th, side)), samples.get((wl, th, "metalearn"))
        return fmt_ratio(min(s["ms"]) / min(m["ms"])) if s and m else "-"

    rows = []
    for wl in workloads if samples else []:
        for th in threads:
            m = med(wl, th, "metalearn")
            loop = med(wl, th, "pytorch_loop")
            bat = med(wl, th, "pytorch_batched")
            best = min(x for x in (loop, bat) if x is not None)
            t_loop, t_best = TARGETS.get(reference(wl), (1.5, 1.5))
            r_loop = loop / m if m and loop else None
            r_bat = bat / m if m and bat else None
            r_best = best / m if m else None
            met_time = (r_loop is not None and r_loop >= t_loop) and (r_best >= t_best)
            mem = [med(wl, th, s, "inc") for s in ("metalearn", "pytorch_loop", "pytorch_batched")]
            peaks = [med(wl, th, s, "peak") for s in ("metalearn", "pytorch_loop", "pytorch_batched")]
            torch_inc = min(x for x in mem[1:] if x is not None)
            met_mem = mem[0] <= torch_inc
            rows.append((wl, th, m, loop, bat, r_loop, r_bat, r_best, t_loop, t_best, met_time,
                         mem, peaks, met_mem))

    now = datetime.datetime.now()
    lines = []
    lines.append(f"# metalearn vs PyTorch, {now:%Y-%m-%d %H:%M}")
    lines.append("")
    lines.append(f"- Machine: {lscpu_field('Model name')}, {lscpu_field('CPU(s)')} logical CPUs "
                 f"({lscpu_field('Thread(s) per core')} thread(s) per core), "
                 f"{platform.system()} {platform.release()}")
    lines.append(f"- PyTorch {torch_version} (Debian python3-torch), Python {platform.python_version()}")
    lines.append(f"- Load average (1/5/15 min) at start: {load_start}; at end: {load_end} "
                 f"(the 2 cores are shared with other jobs; {minutes:.1f} min run)")
    if samples:  # --check-only: no timing
        lines.append(f"- Protocol: {args.rounds} rounds; per cell the sides alternate in fresh "
                     f"processes (order rotated each round); each process: 1 warm-up step, then >= "
                     f"{args.min_iters} steps and >= {args.min_seconds} s (or >= 2 steps and >= "
                     f"{args.max_seconds} s); times are medians over all "
                     f"steps of all rounds (interquartile range in the second table).")
        lines.append("- One step = one full training step on a fixed batch: meta-gradient over "
                     "the meta-batch + Adam update (data sampling excluded on both sides).")
        lines.append("- Memory: VmHWM after resetting it (/proc/self/clear_refs) once set-up is "
                     "done; 'incr.' = peak during the steps minus RSS before the first step; 'peak' = the "
                     "whole process (PyTorch's includes libtorch). Medians over rounds, MB.")
    lines.append("")
    if samples:
        lines.append("| workload | threads | metalearn ms | PyTorch loop ms | PyTorch batched ms | "
                     "loop / ml | batched / ml | target (loop, best) | time target | "
                     "incr. ml | incr. loop | incr. batched | peak ml | peak loop | peak batched | "
                     "memory target |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for (wl, th, m, loop, bat, r_loop, r_bat, r_best, t_loop, t_best, met_time, mem, peaks,
             met_mem) in rows:
            lines.append(f"| {wl} | {th} | {fmt_ms(m)} | {fmt_ms(loop)} | {fmt_ms(bat)} | "
                         f"{fmt_ratio(r_loop)} | {fmt_ratio(r_bat)} | {t_loop:g}x, {t_best:g}x | "
                         f"{'met' if met_time else 'MISSED'} | "
                         + " | ".join(fmt_mb(x) for x in mem) + " | "
                         + " | ".join(fmt_mb(x) for x in peaks)
                         + f" | {'met' if met_mem else 'MISSED'} |")
        lines.append("")
        lines.append("Fastest step / interquartile range of the step times (ms), and the ratios of "
                     "the fastest steps (under heavy load the fastest step is the closest to the "
                     "uncontended cost; the medians above include time slices lost to other "
                     "jobs):")
        lines.append("")
        lines.append("| workload | threads | metalearn | PyTorch loop | PyTorch batched | "
                     "loop / ml (fastest) | batched / ml (fastest) |")
        lines.append("|---|---|---|---|---|---|---|")
        for wl in workloads:
            for th in threads:
                lines.append(f"| {wl} | {th} | {quart(wl, th, 'metalearn')} | "
                             f"{quart(wl, th, 'pytorch_loop')} | "
                             f"{quart(wl, th, 'pytorch_batched')} | "
                             f"{min_ratio(wl, th, 'pytorch_loop')} | "
                             f"{min_ratio(wl, th, 'pytorch_batched')} |")
    if checks:
        lines.append("")
        lines.append("Meta-gradient agreement (the rule is in run_compare.py's docstring). "
                     "`bench_compare dump` writes metalearn's initial parameters and task batch; "
                     "`workloads.py untie` re-draws noise on the inputs read by every ReLU or "
                     "max-pool choice of the float64 forward passes within delta (the larger of "
                     "2^-16 x RMS and 2x PyTorch's float32 error, per layer and pass) of a tie, "
                     "until none is; both sides' float32 and float64 meta-gradients "
                     "are taken at those inputs. Error = max(worst per-tensor ||g - g_ref|| / "
                     "||g_ref||, whole-vector relative error); tensors whose exact gradient is "
                     "zero (conv biases before batch norm) are left out of the per-tensor worst "
                     "case. agree = no choice within delta, ml32 within 1e-4 of torch64 (loop) "
                     "and ml64 within 1e-8 of every torch64 form; strict = ml32 also within 1e-4 "
                     "of torch32 (loop). 'f32 error / delta' is PyTorch's largest float32 error "
                     "on the values of any choice, as a fraction of that choice's delta.")
        lines.append("")
        lines.append("| workload | verdict | strict | near ties before untie / rounds / inputs "
                     "moved | ml32 vs torch64 | ml32 vs torch32 loop | ml32 vs torch32 batched | "
                     "ml32 vs torch32 loop, im2col | torch32 vs torch64 (loop / batched / loop, "
                     "im2col) | ml64 vs torch64 (loop / batched) | f32 error / delta |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for wl, res in checks.items():
            f = res["forms"]

            def e(key):
                if key not in f:
                    return "-"
                return f"{max(f[key]['max_rel_err'], f[key]['whole_rel_err']):.1e}"

            u = res.get("untie", {})
            sel = res.get("selections", {})
            lines.append(f"| {wl} | {verdict(res)} | "
                         f"{'yes' if res['strict'] else 'no'} | "
                         f"{u.get('near_per_round', ['-'])[0]} / {u.get('rounds', '-')} / "
                         f"{u.get('values_moved', '-')} | {e('loop_f64')} | {e('loop_f32')} | "
                         f"{e('batched_f32')} | {e('loop_im2col_f32')} | "
                         f"{e('loop_f32_vs_f64')} / {e('batched_f32_vs_f64')} / "
                         f"{e('loop_im2col_f32_vs_f64')} | "
                         f"{e('loop_f64_vs_ml64')} / {e('batched_f64_vs_ml64')} | "
                         f"{sel.get('f32_error_over_margin', float('nan')):.2f} |")
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
        print(f"written to {args.out}")
    return 0 if all(r["ok"] for r in checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
