#!/usr/bin/env python3
"""PyTorch CNP, NP and ANP trained on the DeepMind notebooks' GP protocols: the twins of
metalearn's runs (`neural_process_gp.sh cnp`, `metalearn train np|anp --tasks gp`) for
the learning curves.

  np_train.py OUT.jsonl [--model cnp|np|anp] [--protocol cnp|anp] [--steps N]
                        [--eval-every 10000] [--eval-tasks N] [--batch B] [--seed 1]
                        [--resume]

With --resume a run continues from OUT.jsonl.ckpt (written at every evaluation), the same
numbers as an uninterrupted run.

Protocols (the library's GaussianProcessTasks with targets including the context, noise
0.02, x uniform in [-2, 2), counts drawn per task):
- cnp: EQ kernel (length scale 0.4, signal 1.0), 3..9 context points and 2..9 further
  targets, batches of 64, 80,000 steps, 32,000 evaluation tasks;
- anp: EQ kernels with length scale from [0.1, 0.6) and signal scale from [0.1, 1.0)
  drawn per task, 3..49 context points and 2..49 further targets, batches of 16,
  100,000 steps, 3,200 evaluation tasks.
Models (the library's defaults, Adam 1e-4, Glorot-uniform MLP weights and zero biases):
- CNP: encoder [128] x 4 on [x, y], mean over the context, decoder [128, 128, 2] on
  [r, x*], sigma = 0.1 + 0.9 softplus(.);
- NP: deterministic path [128] x 3 (mean over the context), latent path [128] x 3 on
  [x, y], mean, a head [128, 128, 256] giving z's mean and 0.1 + 0.9 sigmoid(.) scale
  (z of 128), decoder [128, 128, 2] on [r, z, x*]; trained on the ELBO with the
  posterior encoded from the targets and the prior from the context;
- ANP: the NP with the deterministic mean replaced by 8-head cross-attention (queries
  and keys: the inputs through an MLP [128, 128]; values: the per-point
  representations; projections without biases, normal with std d^-1/2).
Evaluation: per task, the predictive log-likelihood per point over all targets, over
the context points alone and over the further targets alone (the NP and ANP: a Monte
Carlo estimate with 50 draws of z from the prior, log-mean-exp), then the mean over
the tasks with a 95% interval; one JSON line per evaluation. A batch is padded to its
largest task and masked, so it runs as one graph; the arithmetic is the per-task
loss's.
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

PROTOCOLS = {
    # context range, further targets range, length scale range, signal range, batch, steps,
    # evaluation tasks
    "cnp": dict(context=(3, 9), targets=(2, 9), length=(0.4, 0.4), signal=(1.0, 1.0),
                batch=64, steps=80000, eval_tasks=32000),
    "anp": dict(context=(3, 49), targets=(2, 49), length=(0.1, 0.6), signal=(0.1, 1.0),
                batch=16, steps=100000, eval_tasks=3200),
}
NOISE = 0.02
LATENT = 128
HEADS = 8


def sample_batch(p, batch, gen):
    """Padded tasks: x, y [B, N, 1]; context mask [B, N]; target mask [B, N] (targets
    include the context, which comes first)."""
    nc = torch.randint(p["context"][0], p["context"][1] + 1, (batch,), generator=gen)
    nt = torch.randint(p["targets"][0], p["targets"][1] + 1, (batch,), generator=gen)
    n = nc + nt
    width = int(n.max())
    (l0, l1), (s0, s1) = p["length"], p["signal"]
    length = l0 + (l1 - l0) * torch.rand(batch, 1, 1, generator=gen, dtype=torch.float64)
    signal = s0 + (s1 - s0) * torch.rand(batch, 1, 1, generator=gen, dtype=torch.float64)
    x = torch.rand(batch, width, generator=gen, dtype=torch.float64) * 4.0 - 2.0
    d = x[:, :, None] - x[:, None, :]
    k = signal ** 2 * torch.exp(-d * d / (2 * length ** 2))
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
    return [(glorot(a, b, gen).requires_grad_(True), torch.zeros(b, requires_grad=True))
            for a, b in zip(sizes[:-1], sizes[1:])]


def run_mlp(layers, x):
    for i, (w, b) in enumerate(layers):
        x = x @ w.T + b
        if i + 1 < len(layers):
            x = F.relu(x)
    return x


def masked_mean(h, mask):
    return (h * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)


class Model:
    def __init__(self, kind, gen):
        self.kind = kind
        if kind == "cnp":
            self.enc = make_mlp([2, 128, 128, 128, 128], gen)
            self.dec = make_mlp([129, 128, 128, 2], gen)
            self.layers = self.enc + self.dec
            self.extra = []
            return
        self.det = make_mlp([2, 128, 128, 128], gen)
        self.lat = make_mlp([2, 128, 128, 128], gen)
        self.head = make_mlp([128, (128 + LATENT) // 2, 2 * LATENT], gen)
        self.dec = make_mlp([128 + LATENT + 1, 128, 128, 2], gen)
        self.layers = self.det + self.lat + self.head + self.dec
        self.extra = []
        if kind == "anp":
            self.att = make_mlp([1, 128, 128], gen)
            self.layers += self.att

            def proj(fan):
                return (torch.randn(128, 128, generator=gen) / math.sqrt(fan)).requires_grad_(True)

            self.wq, self.wk, self.wv, self.wo = proj(128), proj(128), proj(128), proj(128)
            self.extra = [self.wq, self.wk, self.wv, self.wo]

    def params(self):
        return [p for layer in self.layers for p in layer] + self.extra

    def decode(self, inputs, y, target):
        out = run_mlp(self.dec, inputs)
        sigma = 0.1 + 0.9 * F.softplus(out[..., 1:])
        return torch.distributions.Normal(out[..., :1], sigma).log_prob(y)[..., 0]  # [B, N]

    def representation(self, x, y, context):
        """r at every point [B, N, 128]."""
        h = run_mlp(self.det, torch.cat([x, y], -1))
        if self.kind == "np":
            return masked_mean(h, context)[:, None, :].expand(-1, x.shape[1], -1)
        q = run_mlp(self.att, x)  # queries and keys: every point's input
        b, n, _ = q.shape
        dh = 128 // HEADS

        def heads(t, w):
            return (t @ w.T).view(b, n, HEADS, dh).transpose(1, 2)  # [B, H, N, dh]

        logits = heads(q, self.wq) @ heads(q, self.wk).transpose(2, 3) / math.sqrt(dh)
        logits = logits.masked_fill(context[:, None, None, :] == 0, float("-inf"))
        att = torch.softmax(logits, -1) @ heads(h, self.wv)  # [B, H, N, dh]
        return att.transpose(1, 2).reshape(b, n, 128) @ self.wo.T

    def latent(self, x, y, mask):
        s = masked_mean(run_mlp(self.lat, torch.cat([x, y], -1)), mask)
        h = run_mlp(self.head, s)
        return h[:, :LATENT], 0.1 + 0.9 * torch.sigmoid(h[:, LATENT:])

    def point_log_p(self, x, y, context, z=None):
        """log p(y_j | ...) at every point [B, N] (z [B, latent] for the NP and ANP)."""
        if self.kind == "cnp":
            r = masked_mean(run_mlp(self.enc, torch.cat([x, y], -1)), context)
            return self.decode(torch.cat([r[:, None, :].expand(-1, x.shape[1], -1), x], -1), y,
                               None)
        r = self.representation(x, y, context)
        zz = z[:, None, :].expand(-1, x.shape[1], -1)
        return self.decode(torch.cat([r, zz, x], -1), y, None)

    def loss(self, x, y, context, target, gen):
        if self.kind == "cnp":
            logp = self.point_log_p(x, y, context)
            return -((logp * target).sum(1) / target.sum(1)).mean()
        prior = self.latent(x, y, context)
        post = self.latent(x, y, target)
        eps = torch.randn(x.shape[0], LATENT, generator=gen)
        z = post[0] + post[1] * eps
        logp = (self.point_log_p(x, y, context, z) * target).sum(1)
        kl = torch.distributions.kl_divergence(torch.distributions.Normal(*post),
                                               torch.distributions.Normal(*prior)).sum(1)
        return ((kl - logp) / target.sum(1)).mean()

    def log_likelihoods(self, x, y, context, target, gen, samples=50):
        """Per task [B]: the log-likelihood per point over all targets, the context and
        the further targets."""
        further = target - context
        masks = (target, context, further)
        if self.kind == "cnp":
            logp = self.point_log_p(x, y, context)
            return [(logp * m).sum(1) / m.sum(1) for m in masks]
        mu, sigma = self.latent(x, y, context)
        sums = [[] for _ in masks]
        for _ in range(samples):
            z = mu + sigma * torch.randn(mu.shape, generator=gen)
            logp = self.point_log_p(x, y, context, z)
            for i, m in enumerate(masks):
                sums[i].append((logp * m).sum(1))
        out = []
        for i, m in enumerate(masks):
            stacked = torch.stack(sums[i])  # [S, B]
            out.append((torch.logsumexp(stacked, 0) - math.log(samples)) / m.sum(1))
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--model", choices=["cnp", "np", "anp"], default="cnp")
    ap.add_argument("--protocol", choices=list(PROTOCOLS), default=None,
                    help="cnp for the CNP, anp for the NP and ANP (default)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--eval-every", type=int, default=10000)
    ap.add_argument("--eval-tasks", type=int, default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--resume", action="store_true",
                    help="continue from OUT.ckpt (written at every evaluation) if it exists")
    a = ap.parse_args()
    p = PROTOCOLS[a.protocol or ("cnp" if a.model == "cnp" else "anp")]
    steps = a.steps or p["steps"]
    batch = a.batch or p["batch"]
    eval_tasks = a.eval_tasks or p["eval_tasks"]
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(a.seed)
    model = Model(a.model, gen)
    opt = torch.optim.Adam(model.params(), lr=1e-4)
    eval_gen = torch.Generator().manual_seed(a.seed + 1000)
    chunk = min(eval_tasks, 400)
    evals = [sample_batch(p, chunk, eval_gen) for _ in range(eval_tasks // chunk)]
    ckpt = a.out + ".ckpt"
    first, before = 1, 0.0
    if a.resume and os.path.exists(ckpt):
        state = torch.load(ckpt)
        with torch.no_grad():
            for mine, saved in zip(model.params(), state["params"]):
                mine.copy_(saved)
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        first, before = state["step"] + 1, state["seconds"]
        print(f"continuing from step {state['step']} of {ckpt}", flush=True)
    t0 = time.time() - before
    with open(a.out, "a" if first > 1 else "w") as log:
        for step in range(first, steps + 1):
            loss = model.loss(*sample_batch(p, batch, gen), gen)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % a.eval_every == 0 or step == steps:
                noise = torch.Generator().manual_seed(a.seed + 2000)
                with torch.no_grad():
                    parts = [model.log_likelihoods(*b, noise) for b in evals]
                line = {"step": step, "seconds": time.time() - t0}
                for i, name in enumerate(("log_likelihood", "context", "new_targets")):
                    values = torch.cat([q[i] for q in parts]).double()
                    line[name] = float(values.mean())
                    line[name + "_ci95"] = float(1.96 * values.std() / math.sqrt(values.numel()))
                line["tasks"] = sum(b[0].shape[0] for b in evals)
                log.write(json.dumps(line) + "\n")
                log.flush()
                print(json.dumps(line), flush=True)
                # Everything the next steps depend on, replaced atomically.
                torch.save({"params": [t.detach().clone() for t in model.params()],
                            "optimizer": opt.state_dict(), "generator": gen.get_state(),
                            "step": step, "seconds": line["seconds"]}, ckpt + ".tmp")
                os.replace(ckpt + ".tmp", ckpt)


if __name__ == "__main__":
    main()
