#!/usr/bin/env python3
"""PyTorch twins of metalearn's ConditionalNeuralProcess and NeuralProcess (Garnelo et
al. 2018; the latent NP with a deterministic path as in Kim et al. 2019).

  cnp_twin.py check <dump>           the meta-gradient of the dump's batch in float64,
                                     against the one metalearn wrote (exit 1 if they differ
                                     by more than 1e-10 relative)
  cnp_twin.py time <dump> [seconds]  meta-steps/s of the same workload in float32
                                     (tasks one by one, Adam), the dump's parameters (the
                                     NP with the dump's noise at every step)

The dump comes from `bench_cnp dump <file>` or `bench_cnp dump-np <file>` (a
safetensors file: "param.<name>", "grad.<name>", "task<i>.{support,query}_{x,y}" and
for the NP and ANP "task<i>.eps", metadata "model", "tasks", "loss", "sigma_floor",
"latent", "heads", "self_attention"; from `bench_cnp dump-anp <file>` for the ANP).
CNP: encoder MLP on [x, y] (ReLU between layers), mean over the context, decoder MLP on
[r, x*] giving (mu, s), sigma = floor + (1 - floor) softplus(s), loss = -mean over
targets of the log-density summed over y's features. NP: a deterministic path as the
CNP's encoder; a latent path (MLP, mean, a head MLP giving z's mean and
0.1 + 0.9 sigmoid(.) as its scale) encoded from the targets (posterior) and from the
context (prior); z = mean + scale * eps from the posterior; decoder on [r, z, x*];
loss = (KL(posterior || prior) - sum of the targets' log-densities) / number of targets.
ANP: the deterministic path's mean replaced by multi-head cross-attention (queries and
keys: the inputs through an MLP; values: the per-point representations, after
self-attention over the context when asked).
"""
import math
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors_file import load  # noqa: E402


def mlp(params, prefix, x):
    """Linear layers "<prefix><k>.weight" [out, in] in order of k, ReLU between them."""
    ks = sorted({int(n[len(prefix):].split(".")[0]) for n in params if n.startswith(prefix)})
    for i, k in enumerate(ks):
        x = x @ params[f"{prefix}{k}.weight"].T + params[f"{prefix}{k}.bias"]
        if i + 1 < len(ks):
            x = F.relu(x)
    return x


def task_loss(params, task, floor):
    sx, sy, qx, qy = task
    r = mlp(params, "encoder.", torch.cat([sx, sy], 1)).mean(0, keepdim=True)
    out = mlp(params, "decoder.", torch.cat([r.expand(qx.shape[0], -1), qx], 1))
    dy = qy.shape[1]
    mu, raw = out[:, :dy], out[:, dy:]
    sigma = floor + (1 - floor) * F.softplus(raw)
    return -torch.distributions.Normal(mu, sigma).log_prob(qy).sum(-1).mean()


def mha(params, prefix, q, k, v, heads):
    """Multi-head attention: per head softmax(q Wq_h^T (k Wk_h^T)^T / sqrt(dh)) v Wv_h^T,
    the heads side by side through out_proj; no biases."""
    wq, wk, wv, wo = (params[prefix + n] for n in ("q_proj", "k_proj", "v_proj", "out_proj"))
    dh = wq.shape[0] // heads
    out = []
    for h in range(heads):
        rows = slice(h * dh, (h + 1) * dh)
        logits = (q @ wq[rows].T) @ (k @ wk[rows].T).T / math.sqrt(dh)
        out.append(torch.softmax(logits, dim=1) @ (v @ wv[rows].T))
    return torch.cat(out, 1) @ wo.T


def mha_batched(params, prefix, q, k, v, heads):
    """The same attention with the heads as a batch dimension (one projection per input,
    then batched products): the form a PyTorch user would write, used for timing."""
    wq, wk, wv, wo = (params[prefix + n] for n in ("q_proj", "k_proj", "v_proj", "out_proj"))
    dh = wq.shape[0] // heads

    def split(x, w):
        return (x @ w.T).view(x.shape[0], heads, dh).transpose(0, 1)

    qh, kh, vh = split(q, wq), split(k, wk), split(v, wv)
    weights = torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(dh), dim=-1)
    return (weights @ vh).transpose(0, 1).reshape(q.shape[0], -1) @ wo.T


def latent(params, x, y, d):
    s = mlp(params, "latent.", torch.cat([x, y], 1)).mean(0, keepdim=True)
    h = mlp(params, "latent_head.", s)
    return h[:, :d], 0.1 + 0.9 * torch.sigmoid(h[:, d:])


def np_task_loss(params, task, floor, d, heads=0, self_attention=False, attention=mha):
    sx, sy, qx, qy, eps = task
    m = qx.shape[0]
    r = mlp(params, "deterministic.", torch.cat([sx, sy], 1))
    if heads > 0:
        if self_attention:
            r = attention(params, "self_attention.", r, r, r, heads)
        keys = mlp(params, "attention_mlp.", sx)
        queries = mlp(params, "attention_mlp.", qx)
        r = attention(params, "cross_attention.", queries, keys, r, heads)
    else:
        r = r.mean(0, keepdim=True).expand(m, -1)
    prior = latent(params, sx, sy, d)
    post = latent(params, qx, qy, d)
    z = post[0] + post[1] * eps
    out = mlp(params, "decoder.", torch.cat([r, z.expand(m, -1), qx], 1))
    dy = qy.shape[1]
    sigma = floor + (1 - floor) * F.softplus(out[:, dy:])
    log_p = torch.distributions.Normal(out[:, :dy], sigma).log_prob(qy).sum()
    kl = torch.distributions.kl_divergence(torch.distributions.Normal(*post),
                                           torch.distributions.Normal(*prior)).sum()
    return (kl - log_p) / m


def workload(path, dtype):
    tensors, meta = load(path)
    names = [n[len("param."):] for n in tensors if n.startswith("param.")]
    params = {n: tensors["param." + n].to(dtype).requires_grad_(True) for n in names}
    tasks = []
    for i in range(int(meta["tasks"])):
        p = f"task{i}."
        keys = ("support_x", "support_y", "query_x", "query_y")
        if meta.get("model") in ("np", "anp"):
            keys += ("eps",)
        tasks.append(tuple(tensors[p + k].to(dtype) for k in keys))
    return names, params, tasks, tensors, meta


def check(path):
    names, params, tasks, tensors, meta = workload(path, torch.float64)
    floor = float(meta["sigma_floor"])
    if meta.get("model") in ("np", "anp"):
        d, heads = int(meta["latent"]), int(meta.get("heads", 0))
        self_att = meta.get("self_attention") == "1"
        loss = sum(np_task_loss(params, t, floor, d, heads, self_att) for t in tasks) / len(tasks)
    else:
        loss = sum(task_loss(params, t, floor) for t in tasks) / len(tasks)
    grads = torch.autograd.grad(loss, [params[n] for n in names])
    worst, where = 0.0, ""
    for n, g in zip(names, grads):
        ours = tensors["grad." + n]
        err = ((g - ours).abs() / (1.0 + g.abs())).max().item()
        if err > worst:
            worst, where = err, n
    loss_err = abs(loss.item() - float(meta["loss"])) / (1.0 + abs(loss.item()))
    print(f"loss: torch {loss.item():.17g}, metalearn {meta['loss']} (relative {loss_err:.2e})")
    print(f"meta-gradient: largest relative difference {worst:.2e} ({where}), "
          f"{sum(g.numel() for g in grads)} values, {len(tasks)} tasks")
    ok = worst <= 1e-10 and loss_err <= 1e-12
    if meta.get("model") == "anp":
        # The batched-heads form the timing runs computes the same loss.
        batched = sum(np_task_loss(params, t, floor, d, heads, self_att, mha_batched)
                      for t in tasks) / len(tasks)
        b_err = abs(batched.item() - loss.item()) / (1.0 + abs(loss.item()))
        print(f"loss with the heads batched: {batched.item():.17g} (relative {b_err:.2e})")
        ok = ok and b_err <= 1e-12
    print("AGREE" if ok else "DIFFER")
    return 0 if ok else 1


def timing(path, seconds):
    names, params, tasks, _, meta = workload(path, torch.float32)
    floor = float(meta["sigma_floor"])
    opt = torch.optim.Adam([params[n] for n in names], lr=1e-4)

    d, heads = int(meta.get("latent", 0)), int(meta.get("heads", 0))
    self_att = meta.get("self_attention") == "1"

    def one(t):
        if meta.get("model") in ("np", "anp"):
            return np_task_loss(params, t, floor, d, heads, self_att, mha_batched)
        return task_loss(params, t, floor)

    def step():
        opt.zero_grad()
        loss = sum(one(t) for t in tasks) / len(tasks)
        loss.backward()
        opt.step()

    step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    rate = n / (time.perf_counter() - t0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s): "
          f"{rate:.2f} meta-steps/s ({1000 / rate:.3f} ms per step)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2]))
    if len(sys.argv) >= 3 and sys.argv[1] == "time":
        sys.exit(timing(sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 10.0))
    print(__doc__)
    sys.exit(2)
