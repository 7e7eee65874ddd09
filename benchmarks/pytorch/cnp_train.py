#!/usr/bin/env python3
"""A PyTorch CNP trained on the DeepMind CNP protocol, the twin of
`benchmarks/reproduce/neural_process_gp.sh cnp` for the learning curve.

  cnp_train.py OUT.jsonl [--steps 80000] [--eval-every 10000] [--eval-tasks 32000]
                         [--batch 64] [--seed 1]

The protocol of metalearn's run (examples/neural_process_gp.cpp): functions from a GP
with an EQ kernel (length scale 0.4, signal 1.0), observation noise 0.02, x uniform in
[-2, 2); per task 3..9 context points and 2..9 further targets, drawn per task, the
targets including the context; batches of 64; Adam 1e-4; encoder MLP [128] x 4 on
[x, y], mean over the context, decoder [128, 128, 2] on [r, x*], sigma = 0.1 + 0.9
softplus(.), Glorot-uniform weights and zero biases; the loss the batch's mean over
tasks of the mean negative log-density over each task's targets. Evaluation: the mean
over --eval-tasks fixed tasks (drawn once, like the training tasks) of the per-target
log-likelihood over all targets, with a 95% interval; one JSON line per evaluation.
A batch is padded to its largest task and masked, so it runs as one graph; the
arithmetic is the per-task loss's.
"""
import argparse
import json
import math
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

MIN_C, MAX_C, MIN_T, MAX_T = 3, 9, 2, 9
LENGTH, SIGNAL, NOISE = 0.4, 1.0, 0.02


def sample_batch(batch, gen):
    """Padded tasks: x, y [B, N, 1]; context mask [B, N]; target mask [B, N] (targets
    include the context, which comes first)."""
    nc = torch.randint(MIN_C, MAX_C + 1, (batch,), generator=gen)
    nt = torch.randint(MIN_T, MAX_T + 1, (batch,), generator=gen)
    n = nc + nt
    width = int(n.max())
    x = torch.rand(batch, width, generator=gen, dtype=torch.float64) * 4.0 - 2.0
    d = x[:, :, None] - x[:, None, :]
    k = SIGNAL ** 2 * torch.exp(-d * d / (2 * LENGTH ** 2))
    k = k + 1e-6 * torch.eye(width, dtype=torch.float64)
    z = torch.randn(batch, width, 1, generator=gen, dtype=torch.float64)
    f = torch.linalg.cholesky(k) @ z
    y = f + NOISE * torch.randn(batch, width, 1, generator=gen, dtype=torch.float64)
    idx = torch.arange(width)[None, :]
    context = (idx < nc[:, None]).float()
    target = (idx < n[:, None]).float()
    return x[:, :, None].float(), y.float(), context, target


def glorot(fan_in, fan_out, gen):
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return (torch.rand(fan_out, fan_in, generator=gen) * 2 - 1) * bound


def make_mlp(sizes, gen):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        w = glorot(a, b, gen).requires_grad_(True)
        bias = torch.zeros(b, requires_grad=True)
        layers.append((w, bias))
    return layers


def run_mlp(layers, x):
    for i, (w, b) in enumerate(layers):
        x = x @ w.T + b
        if i + 1 < len(layers):
            x = F.relu(x)
    return x


def per_task_ll(enc, dec, x, y, context, target):
    """The per-target log-likelihood of each task over its targets [B]."""
    h = run_mlp(enc, torch.cat([x, y], -1))  # [B, N, 128]
    r = (h * context[:, :, None]).sum(1) / context.sum(1, keepdim=True)  # [B, 128]
    out = run_mlp(dec, torch.cat([r[:, None, :].expand(-1, x.shape[1], -1), x], -1))
    mu, raw = out[..., :1], out[..., 1:]
    sigma = 0.1 + 0.9 * F.softplus(raw)
    logp = torch.distributions.Normal(mu, sigma).log_prob(y)[..., 0]  # [B, N]
    return (logp * target).sum(1) / target.sum(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=80000)
    ap.add_argument("--eval-every", type=int, default=10000)
    ap.add_argument("--eval-tasks", type=int, default=32000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(a.seed)
    enc = make_mlp([2, 128, 128, 128, 128], gen)
    dec = make_mlp([129, 128, 128, 2], gen)
    params = [p for layer in enc + dec for p in layer]
    opt = torch.optim.Adam(params, lr=1e-4)
    eval_gen = torch.Generator().manual_seed(a.seed + 1000)
    evals = [sample_batch(1000, eval_gen) for _ in range(a.eval_tasks // 1000)]
    t0 = time.time()
    with open(a.out, "w") as log:
        for step in range(1, a.steps + 1):
            loss = -per_task_ll(enc, dec, *sample_batch(a.batch, gen)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % a.eval_every == 0 or step == a.steps:
                with torch.no_grad():
                    values = torch.cat([per_task_ll(enc, dec, *b) for b in evals]).double()
                mean = float(values.mean())
                ci95 = float(1.96 * values.std() / math.sqrt(values.numel()))
                line = {"step": step, "log_likelihood": mean, "ci95": ci95,
                        "tasks": values.numel(), "seconds": time.time() - t0}
                log.write(json.dumps(line) + "\n")
                log.flush()
                print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
