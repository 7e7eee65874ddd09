#!/usr/bin/python3
"""PyTorch reference implementations of the workloads of benchmarks/bench_compare.cpp.

Two forms of every meta-learning workload:
  loop    -- the idiomatic form (as learn2learn / higher users write it): a Python loop
             over the tasks of the meta-batch, functional forwards over a list of
             parameters, inner gradients from torch.autograd.grad(create_graph=True),
             query loss backward per task, one Adam step;
  batched -- all tasks of the meta-batch in one set of ops: per-task parameter copies
             [T, ...] (an expand of theta), torch.baddbmm for linear layers, grouped
             convolutions (groups = T) for the ConvNet, per-task losses summed so one
             autograd.grad call yields every task's inner gradient.
ProtoNet and Matching Networks have a single episode per step, so they have only the
loop form. Matching Networks' full context embeddings run PyTorch's fused LSTM kernels
(torch._VF.lstm, what nn.LSTM(bidirectional=True) runs, over the supports; torch.lstm_cell,
what nn.LSTMCell runs, for the attention steps).

Usage:
  workloads.py list
  workloads.py time <workload> <form> <threads> <min_iters> <min_seconds> [max_seconds]
      (one warm-up step, then steps until min_iters steps took min_seconds or, with at
      least 2 steps, max_seconds have passed; one JSON line with times and memory)
  workloads.py untie <workload> <float32 dump> <inputs file>
      (writes the dump's parameters and task batch, the inputs moved until no ReLU or
      max-pool choice of the float64 forward passes is near a tie; one JSON line)
  workloads.py check <workload> <float32 dump> [<float64 dump>]
      (dumps written by `bench_compare dump <workload> <file> f32|f64 <inputs file>`)

Batch norm is always in training mode with batch statistics and no running
statistics (F.batch_norm(x, None, None, weight, bias, training=True)), the MAML
reference behaviour and the "transductive" mode of metalearn.
"""

import json
import math
import struct
import sys
import time

import torch
import torch.nn.functional as F

# ---- models as functional forwards over a parameter list ------------------------------


def mlp_params(sizes):
    params = []
    for i in range(len(sizes) - 1):
        layer = torch.nn.Linear(sizes[i], sizes[i + 1])
        params += [layer.weight.detach().clone(), layer.bias.detach().clone()]
    return params


# The forwards' selections (ReLU's sign, max-pool's argmax) can be watched: while an
# observer is set (`observing`), every forward of the loop form hands it the values the
# selection is made on. The untie and check modes use it; timing never sets one.
_observer = None


def _note(kind, layer, pre, inp):
    """kind "relu": F.relu(pre); kind "pool": F.max_pool2d(F.relu(pre), 2). inp is the
    forward's input, which tells the observer which samples pre's rows belong to."""
    if _observer is not None:
        _observer(kind, layer, pre.detach(), inp)


class observing:
    def __init__(self, fn):
        self.fn = fn

    def __enter__(self):
        global _observer
        _observer = self.fn

    def __exit__(self, *exc):
        global _observer
        _observer = None


def mlp_forward(p, x):
    inp = x
    n = len(p) // 2
    for i in range(n):
        x = F.linear(x, p[2 * i], p[2 * i + 1])
        if i + 1 < n:
            _note("relu", i, x, inp)
            x = F.relu(x)
    return x


def mlp_forward_batched(p, x):
    """p[i]: [T, ...] per-task parameters; x: [T, N, D]."""
    n = len(p) // 2
    for i in range(n):
        x = torch.baddbmm(p[2 * i + 1].unsqueeze(1), x, p[2 * i].transpose(1, 2))
        if i + 1 < n:
            x = F.relu(x)
    return x


def conv2d_im2col(x, w, bias, padding):
    """F.conv2d as unfold + matmul, the im2col GEMM: the same convolution with its sums
    in another order. The gradient check uses it for a second float32 reference."""
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    cols = F.unfold(x, (kh, kw), padding=padding)  # [N, C*kh*kw, L]
    y = torch.matmul(w.reshape(o, -1), cols) + bias.reshape(1, o, 1)
    return y.reshape(n, o, h + 2 * padding - kh + 1, wd + 2 * padding - kw + 1)


class ConvSpec:
    """A stack of [conv 3x3, batch norm, ReLU, 2x2 max-pool] blocks, optional head."""

    def __init__(self, blocks, padding, ways, hidden=64, in_channels=1, size=28):
        self.conv = F.conv2d  # the per-task forward's convolution
        self.blocks, self.padding, self.ways = blocks, padding, ways
        self.hidden, self.in_channels, self.size = hidden, in_channels, size
        s = size
        for _ in range(blocks):
            s = (s + 2 * padding - 2) // 2
        self.feature_dim = hidden * s * s

    def params(self):
        p = []
        c = self.in_channels
        for _ in range(self.blocks):
            conv = torch.nn.Conv2d(c, self.hidden, 3, padding=self.padding)
            p += [conv.weight.detach().clone(), conv.bias.detach().clone(),
                  torch.ones(self.hidden), torch.zeros(self.hidden)]
            c = self.hidden
        if self.ways:
            head = torch.nn.Linear(self.feature_dim, self.ways)
            p += [head.weight.detach().clone(), head.bias.detach().clone()]
        return p

    def forward(self, p, x):
        inp = x
        for b in range(self.blocks):
            w, bias, gamma, beta = p[4 * b:4 * b + 4]
            x = self.conv(x, w, bias, padding=self.padding)
            x = F.batch_norm(x, None, None, gamma, beta, training=True, eps=1e-5)
            _note("pool", b, x, inp)
            x = F.max_pool2d(F.relu(x), 2)
        x = x.flatten(1)
        if self.ways:
            x = F.linear(x, p[-2], p[-1])
        return x

    def forward_batched(self, p, x):
        """p[i]: [T, ...]; x: [T, N, C, H, W]. Tasks become channel groups."""
        t, n = x.shape[0], x.shape[1]
        h = x.transpose(0, 1).reshape(n, t * x.shape[2], x.shape[3], x.shape[4])
        for b in range(self.blocks):
            w, bias, gamma, beta = p[4 * b:4 * b + 4]
            h = F.conv2d(h, w.reshape(-1, *w.shape[2:]), bias.reshape(-1),
                         padding=self.padding, groups=t)
            h = F.batch_norm(h, None, None, gamma.reshape(-1), beta.reshape(-1),
                             training=True, eps=1e-5)
            h = F.max_pool2d(F.relu(h), 2)
        h = h.reshape(n, t, -1).transpose(0, 1)  # [T, N, feature_dim]
        if self.ways:
            h = torch.baddbmm(p[-1].unsqueeze(1), h, p[-2].transpose(1, 2))
        return h

    def receptive_field(self, block, i, j):
        """The input rows and columns (inclusive ranges, clipped to the image) that
        2x2 max-pool window (i, j) of block `block` reads."""
        sizes = [self.size]  # each block's input size
        for _ in range(self.blocks):
            sizes.append((sizes[-1] + 2 * self.padding - 2) // 2)
        rows, cols = [2 * i, 2 * i + 1], [2 * j, 2 * j + 1]  # in the block's conv output
        for b in range(block, -1, -1):
            # conv output row r reads input rows r - padding .. r - padding + 2
            rows = [max(rows[0] - self.padding, 0), min(rows[1] - self.padding + 2, sizes[b] - 1)]
            cols = [max(cols[0] - self.padding, 0), min(cols[1] - self.padding + 2, sizes[b] - 1)]
            if b:  # the block's input row r is the max-pool of the previous output's 2r, 2r+1
                rows, cols = [2 * rows[0], 2 * rows[1] + 1], [2 * cols[0], 2 * cols[1] + 1]
        return rows, cols


# ---- losses ------------------------------------------------------------------------------


def mse(pred, y):
    return F.mse_loss(pred, y)


def mse_batched(pred, y):
    return ((pred - y) ** 2).mean(dim=(1, 2))


def ce(logits, y):
    return F.cross_entropy(logits, y)


def ce_batched(logits, y):
    t, n = logits.shape[0], logits.shape[1]
    return F.cross_entropy(logits.reshape(t * n, -1), y.reshape(t * n),
                           reduction="none").reshape(t, n).mean(1)


# ---- algorithms ----------------------------------------------------------------------------


def maml_loop_loss(params, tasks, fwd, loss, steps, lr, second_order, backward=True):
    """Mean query loss over the tasks; with backward, each task's query loss is
    back-propagated as soon as it is computed (as learn2learn/higher users do), which
    keeps one task's graph alive at a time."""
    total = 0.0
    for sx, sy, qx, qy in tasks:
        fast = params
        for _ in range(steps):
            g = torch.autograd.grad(loss(fwd(fast, sx), sy), fast, create_graph=second_order)
            fast = [p - lr * gi for p, gi in zip(fast, g)]
        q = loss(fwd(fast, qx), qy) / len(tasks)
        if backward:
            q.backward()
            total += q.item()
        else:
            total = total + q
    return total


def maml_batched_loss(params, batch, fwd_b, loss_b, steps, lr, second_order):
    sx, sy, qx, qy = batch
    t = sx.shape[0]
    fast = [p.unsqueeze(0).expand(t, *p.shape) for p in params]
    for _ in range(steps):
        g = torch.autograd.grad(loss_b(fwd_b(fast, sx), sy).sum(), fast,
                                create_graph=second_order)
        fast = [p - lr * gi for p, gi in zip(fast, g)]
    return loss_b(fwd_b(fast, qx), qy).mean()


def reptile_loop_delta(params, tasks, fwd, loss, steps, lr):
    delta = [torch.zeros_like(p) for p in params]
    for sx, sy, _, _ in tasks:
        fast = [p.detach().clone().requires_grad_() for p in params]
        for _ in range(steps):
            g = torch.autograd.grad(loss(fwd(fast, sx), sy), fast)
            with torch.no_grad():
                fast = [(p - lr * gi).requires_grad_() for p, gi in zip(fast, g)]
        with torch.no_grad():
            for d, p, f in zip(delta, params, fast):
                d += (p - f) / len(tasks)
    return delta


def reptile_batched_delta(params, batch, fwd_b, loss_b, steps, lr):
    sx, sy = batch[0], batch[1]
    t = sx.shape[0]
    fast = [p.detach().unsqueeze(0).repeat(t, *([1] * p.dim())).requires_grad_()
            for p in params]
    for _ in range(steps):
        g = torch.autograd.grad(loss_b(fwd_b(fast, sx), sy).sum(), fast)
        with torch.no_grad():
            fast = [(p - lr * gi).requires_grad_() for p, gi in zip(fast, g)]
    with torch.no_grad():
        return [p - f.mean(0) for p, f in zip(params, fast)]


def proto_loss(params, episode, spec):
    sx, sy, qx, qy, ways, shots = episode
    ns = sx.shape[0]
    emb = spec.forward(params, torch.cat([sx, qx], 0))
    averaging = F.one_hot(sy, ways).t().to(emb.dtype) / shots  # [ways, ns]
    protos = averaging @ emb[:ns]
    dist = ((emb[ns:].unsqueeze(1) - protos.unsqueeze(0)) ** 2).sum(-1)
    return F.cross_entropy(-dist, qy)


FCE_PARAMS = 12  # three LSTM cells: weight_ih, weight_hh, bias_ih, bias_hh


def fce_params(dim):
    """Full context embeddings' parameters in metalearn's order: the support LSTM's
    forward and backward cells (dim -> dim), then the attention cell (2 dim -> dim)."""
    bound = 1.0 / math.sqrt(dim)
    out = []
    for inputs in (dim, dim, 2 * dim):
        for shape in ((4 * dim, inputs), (4 * dim, dim), (4 * dim,), (4 * dim,)):
            out.append(torch.empty(shape).uniform_(-bound, bound))
    return out


def full_context(g, f, c, steps):
    """g' [S, D], f' [Q, D] -> g, f of full context embeddings (metalearn's
    algorithms/matching/full_context.hpp): a bidirectional LSTM over the supports in
    their order, added to them; K attention steps from a zero state for the queries."""
    d = g.shape[1]
    zeros = g.new_zeros(2, 1, d)
    out = torch._VF.lstm(g.unsqueeze(1), (zeros, zeros), c[0:8], True, 1, 0.0, True, True,
                         False)[0]
    g = g + out[:, 0, :d] + out[:, 0, d:]
    h, cell = f.new_zeros(f.shape), f.new_zeros(f.shape)
    for _ in range(steps):
        read = torch.softmax(h @ g.t(), 1) @ g
        h, cell = torch.lstm_cell(torch.cat([f, read], 1), (h, cell), *c[8:12])
        h = h + f
    return g, h


def matching_loss(params, episode, spec, steps):
    """Matching Networks' episode loss: log p(k | x) = logsumexp of the cosines to class
    k's supports minus that over all supports; cross-entropy of the queries."""
    sx, sy, qx, qy, ways, _ = episode
    ns = sx.shape[0]
    n_embed = len(params) - (FCE_PARAMS if steps else 0)
    emb = spec.forward(params[:n_embed], torch.cat([sx, qx], 0))
    g, f = emb[:ns], emb[ns:]
    if steps:
        g, f = full_context(g, f, params[n_embed:], steps)
    logits = F.cosine_similarity(f.unsqueeze(1), g.unsqueeze(0), dim=-1)  # [Q, S]
    outside = ~F.one_hot(sy, ways).t().bool()  # [ways, S]: not of class k
    per_class = torch.logsumexp(logits.unsqueeze(1).masked_fill(outside, -math.inf), 2)
    return F.nll_loss(per_class - torch.logsumexp(logits, 1, keepdim=True), qy)


# ---- workloads -------------------------------------------------------------------------------

EPISODIC = ("proto", "matching")


class Workload:
    def __init__(self, name, kind, make_params, fwd, fwd_b, loss, loss_b, steps, lr,
                 second_order, make_data, spec=None, fce_steps=0):
        self.name, self.kind = name, kind
        self.fce_steps = fce_steps
        self.make_params, self.fwd, self.fwd_b = make_params, fwd, fwd_b
        self.loss, self.loss_b = loss, loss_b
        self.steps, self.lr, self.second_order = steps, lr, second_order
        self.make_data, self.spec = make_data, spec

    def forms(self):
        return ["loop"] if self.kind in EPISODIC else ["loop", "batched"]

    def episode_loss(self, params, episode):
        if self.kind == "proto":
            return proto_loss(params, episode, self.spec)
        return matching_loss(params, episode, self.spec, self.fce_steps)

    # -- the gradient one training step applies, for a batch of tasks --
    def gradient(self, params, tasks, form):
        if self.kind in EPISODIC:
            return torch.autograd.grad(self.episode_loss(params, tasks), params)
        if self.kind == "reptile":
            if form == "loop":
                return reptile_loop_delta(params, tasks, self.fwd, self.loss, self.steps, self.lr)
            return reptile_batched_delta(params, stack_tasks(tasks), self.fwd_b, self.loss_b,
                                         self.steps, self.lr)
        if form == "loop":
            q = maml_loop_loss(params, tasks, self.fwd, self.loss, self.steps, self.lr,
                               self.second_order, backward=False)
        else:
            q = maml_batched_loss(params, stack_tasks(tasks), self.fwd_b, self.loss_b,
                                  self.steps, self.lr, self.second_order)
        return torch.autograd.grad(q, params)

    # -- a training step closure (meta-gradient + Adam; Reptile: outer step 1) --
    def stepper(self, params, tasks, form):
        opt = torch.optim.Adam(params, lr=1e-3)
        if self.kind in EPISODIC:
            def step():
                opt.zero_grad()
                self.episode_loss(params, tasks).backward()
                opt.step()
        elif self.kind == "reptile":
            batch = stack_tasks(tasks)

            def step():
                if form == "loop":
                    d = reptile_loop_delta(params, tasks, self.fwd, self.loss, self.steps, self.lr)
                else:
                    d = reptile_batched_delta(params, batch, self.fwd_b, self.loss_b,
                                              self.steps, self.lr)
                with torch.no_grad():  # theta <- theta + 1.0 * mean(phi - theta)
                    for p, di in zip(params, d):
                        p -= di
        elif form == "loop":
            def step():
                opt.zero_grad()
                maml_loop_loss(params, tasks, self.fwd, self.loss, self.steps, self.lr,
                               self.second_order)
                opt.step()
        else:
            batch = stack_tasks(tasks)

            def step():
                opt.zero_grad()
                maml_batched_loss(params, batch, self.fwd_b, self.loss_b, self.steps, self.lr,
                                  self.second_order).backward()
                opt.step()
        return step


def stack_tasks(tasks):
    return tuple(torch.stack([t[i] for t in tasks]) for i in range(4))


def sinusoid_tasks(batch=25, shots=10, queries=10):
    tasks = []
    for _ in range(batch):
        amp = torch.empty(1).uniform_(0.1, 5.0)
        phase = torch.empty(1).uniform_(0.0, math.pi)
        sx = torch.empty(shots, 1).uniform_(-5.0, 5.0)
        qx = torch.empty(queries, 1).uniform_(-5.0, 5.0)
        tasks.append((sx, amp * torch.sin(sx - phase), qx, amp * torch.sin(qx - phase)))
    return tasks


def glyph_labels(ways, per_class):
    return torch.arange(ways).repeat(per_class)[torch.randperm(ways * per_class)]


def image_tasks(batch, ways, shots, queries):
    tasks = []
    for _ in range(batch):
        tasks.append((torch.rand(ways * shots, 1, 28, 28), glyph_labels(ways, shots),
                      torch.rand(ways * queries, 1, 28, 28), glyph_labels(ways, queries)))
    return tasks


def proto_episode(ways, shots, queries):
    sx, sy, qx, qy = image_tasks(1, ways, shots, queries)[0]
    return (sx, sy, qx, qy, ways, shots)


def _workloads():
    mlp = [1, 40, 40, 1]
    paper = ConvSpec(blocks=4, padding=1, ways=5)
    bench = ConvSpec(blocks=3, padding=0, ways=5)
    embed = ConvSpec(blocks=4, padding=1, ways=0)
    w = [
        Workload("sinusoid_maml2", "maml", lambda: mlp_params(mlp), mlp_forward,
                 mlp_forward_batched, mse, mse_batched, 1, 0.01, True, sinusoid_tasks),
        Workload("sinusoid_maml1", "maml", lambda: mlp_params(mlp), mlp_forward,
                 mlp_forward_batched, mse, mse_batched, 1, 0.01, False, sinusoid_tasks),
        Workload("sinusoid_reptile5", "reptile", lambda: mlp_params(mlp), mlp_forward,
                 mlp_forward_batched, mse, mse_batched, 5, 0.01, False, sinusoid_tasks),
        Workload("omniglot_maml_paper", "maml", paper.params, paper.forward,
                 paper.forward_batched, ce, ce_batched, 1, 0.4, True,
                 lambda: image_tasks(32, 5, 1, 1), spec=paper),
        Workload("omniglot_maml_torchbench", "maml", bench.params, bench.forward,
                 bench.forward_batched, ce, ce_batched, 5, 0.1, True,
                 lambda: image_tasks(5, 5, 5, 15), spec=bench),
        Workload("protonet_60w5s", "proto", embed.params, None, None, None, None, 0, 0.0,
                 False, lambda: proto_episode(60, 5, 5), spec=embed),
        Workload("protonet_5w1s", "proto", embed.params, None, None, None, None, 0, 0.0,
                 False, lambda: proto_episode(5, 1, 15), spec=embed),
        Workload("matching_5w1s", "matching", embed.params, None, None, None, None, 0, 0.0,
                 False, lambda: proto_episode(5, 1, 15), spec=embed),
        Workload("matching_20w1s", "matching", embed.params, None, None, None, None, 0, 0.0,
                 False, lambda: proto_episode(20, 1, 5), spec=embed),
        Workload("matching_fce_5w1s", "matching", lambda: embed.params() + fce_params(64), None,
                 None, None, None, 0, 0.0, False, lambda: proto_episode(5, 1, 15), spec=embed,
                 fce_steps=5),
        Workload("matching_fce_20w1s", "matching", lambda: embed.params() + fce_params(64), None,
                 None, None, None, 0, 0.0, False, lambda: proto_episode(20, 1, 5), spec=embed,
                 fce_steps=5),
    ]
    return {x.name: x for x in w}


WORKLOADS = _workloads()

# ---- inputs away from ties ---------------------------------------------------------------------
#
# The meta-gradient is piecewise smooth: every ReLU chooses by a sign and every max-pool
# window by an argmax, and the gradient jumps where a choice changes. Float32 rounding
# moves the values a choice is made on by a few 1e-6 (in units of their RMS; batch norm
# makes that ~1), so where the float64 values lie closer than that to a tie, one float32
# computation can choose otherwise than another, and their gradients differ by a jump
# that says nothing about either. `untie` moves the task batch's inputs until every
# choice of the float64 forward passes (inner loops included) is at least its layer's
# margin delta from changing: a ReLU input |v| >= delta; a max-pool window whose largest
# value is above -delta has it above delta and at least delta above the second largest.
# delta, per layer of each forward pass, is the larger of TIE_MARGIN x the RMS of the
# values and ERROR_FACTOR x PyTorch's largest float32 error on them (measured by running
# the same passes in float32). Each round re-draws, in every sample with a choice closer
# than that, the noise on only the inputs that choice reads (the window's receptive
# field; an MLP sample's input): uniform, NUDGE times the input tensor's RMS, seeded by
# the round. The rest of the batch moves only through batch statistics and adapted
# weights. The glyph images' blank backgrounds are exact ties at first, so the first
# round dithers them.

TIE_MARGIN = 2.0 ** -16  # ~1.5e-5 of the RMS; PyTorch's float32 error is mostly below 4e-6
ERROR_FACTOR = 2.0  # with 4, MAML (paper)'s query passes kept ~270 choices near after 100 rounds
NUDGE = 2.0 ** -4
UNTIE_ROUNDS = 100


def selection_values(wl, params, tasks, fn):
    """Calls fn(kind, layer, values, forward input) with the values every choice of the
    loop form's forward passes is made on, per ReLU / block, in order. Runs the inner
    loops (first order: the values are the same), not the meta-gradient."""
    with observing(fn):
        if wl.kind in EPISODIC:
            with torch.no_grad():
                wl.episode_loss(params, tasks)
        elif wl.kind == "reptile":
            reptile_loop_delta(params, tasks, wl.fwd, wl.loss, wl.steps, wl.lr)
        else:
            maml_loop_loss(params, tasks, wl.fwd, wl.loss, wl.steps, wl.lr, False,
                           backward=False)


def rms(x):
    return x.double().pow(2).mean().sqrt().item()


def scan_choices(wl, dump, make_look):
    """Runs the forward passes at the dump's inputs in float32, then in float64, and
    calls look(kind, layer, values, forward input, delta, err32) per ReLU / block of the
    float64 passes, look = make_look(the float64 tasks). delta, the margin of that
    layer's choices, is the larger of TIE_MARGIN x the RMS of its values and
    ERROR_FACTOR x err32, PyTorch's largest float32 error on them."""
    v32 = []
    params, tasks, _, _ = dumped_inputs(wl, dump, torch.float32)
    selection_values(wl, params, tasks, lambda kind, layer, v, inp: v32.append(v))
    params, tasks, _, _ = dumped_inputs(wl, dump, torch.float64)
    look = make_look(tasks)
    index = iter(range(len(v32)))

    def each(kind, layer, v, inp):
        i = next(index)
        err32 = (v32[i].double() - v).abs().max().item()
        v32[i] = None
        look(kind, layer, v, inp, max(TIE_MARGIN * rms(v), ERROR_FACTOR * err32), err32)

    selection_values(wl, params, tasks, each)


def near_ties(kind, values, delta):
    """Indices of the choices within delta of changing: [k, 2] (sample, unit) for a
    ReLU's [N, H] input, [k, 4] (sample, channel, window row, window column) for a
    block's [N, C, H, W] batch-norm output ahead of ReLU and 2x2 max-pool."""
    if kind == "relu":
        return (values.abs() < delta).nonzero()
    n, c, h, w = values.shape
    win = values[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2)
    top = win.permute(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4).topk(2, dim=-1).values
    t1, t2 = top[..., 0], top[..., 1]
    return ((t1 > -delta) & ((t1 < delta) | (t1 - t2 < delta))).nonzero()


def input_records(wl, tasks):
    """forward input -> function(sample) -> (dump record, row) the sample comes from."""
    if wl.kind in EPISODIC:
        ns = tasks[0].shape[0]
        return lambda inp: (lambda n: ("task.0.support_x", n) if n < ns
                            else ("task.0.query_x", n - ns))
    rec = {}
    for t, task in enumerate(tasks):
        rec[id(task[0])] = f"task.{t}.support_x"
        if task[2].numel():
            rec[id(task[2])] = f"task.{t}.query_x"
    return lambda inp: (lambda n: (rec[id(inp)], n))


def find_near_ties(wl, dump):
    """Every choice of the float64 forward passes within its margin of changing, as
    (dump record, sample, (rows, columns) or None) of the inputs it reads."""
    found = []

    def make_look(tasks):
        source = input_records(wl, tasks)

        def look(kind, layer, values, inp, delta, err32):
            where = source(inp)
            for idx in near_ties(kind, values, delta).tolist():
                record, row = where(idx[0])
                box = wl.spec.receptive_field(layer, idx[2], idx[3]) if kind == "pool" else None
                found.append((record, row, box))

        return look

    scan_choices(wl, dump, make_look)
    return found


def untie(wl, dump):
    """Moves the dump's task inputs (float32 values, in place) until no choice of the
    float64 forward passes is within its margin of changing, or for UNTIE_ROUNDS
    rounds. Returns what it did."""
    counts, moved = [], set()
    dither = {}  # record -> the noise added to its original values
    original = {k: v.double() for k, v in dump.items() if k.startswith("task.")}
    for rnd in range(UNTIE_ROUNDS + 1):
        found = find_near_ties(wl, dump)
        counts.append(len(found))
        print(f"untie {wl.name}: round {rnd}, {len(found)} choices within the margin",
              file=sys.stderr, flush=True)
        if not found or rnd == UNTIE_ROUNDS:  # the check reports what is left
            break
        masks = {}
        for record, row, box in found:
            m = masks.setdefault(record, torch.zeros(dump[record].shape, dtype=torch.bool))
            if box is None:
                m[row] = True
            else:
                (r0, r1), (c0, c1) = box
                m[row, ..., r0:r1 + 1, c0:c1 + 1] = True
        gen = torch.Generator().manual_seed(1 + rnd)
        for record in sorted(masks):
            x0 = original[record]
            noise = torch.rand(x0.shape, generator=gen, dtype=torch.float64) * 2 - 1
            noise *= NUDGE * rms(x0)
            d = dither.setdefault(record, torch.zeros_like(x0))
            d[masks[record]] = noise[masks[record]]
            dump[record] = (x0 + d).to(dump[record].dtype)
            moved |= {(record, i) for i in masks[record].flatten().nonzero().flatten().tolist()}
    return {"margin": TIE_MARGIN, "error_factor": ERROR_FACTOR, "nudge": NUDGE,
            "rounds": len(counts) - 1, "converged": counts[-1] == 0,
            "near_per_round": counts, "values_moved": len(moved)}


def write_dump(path, dump):
    """Writes the "param." and "task." records of a float32 dump (the inputs of
    `bench_compare dump <workload> <file> f32|f64 <inputs>`)."""
    keep = [k for k in dump if k.startswith(("param.", "task."))]
    with open(path, "wb") as f:
        f.write(b"MLCMP032")
        f.write(struct.pack("<I", len(keep)))
        for k in keep:
            t = dump[k].detach().to(torch.float32).contiguous()
            name = k.encode()
            f.write(struct.pack("<I", len(name)) + name)
            f.write(struct.pack("<I", t.dim()) + struct.pack(f"<{t.dim()}q", *t.shape))
            f.write(t.numpy().tobytes())


def run_untie(name, path_in, path_out):
    torch.set_num_threads(1)
    wl = WORKLOADS[name]
    dump = read_dump(path_in)
    if dump[next(iter(dump))].dtype != torch.float32:
        raise ValueError("untie: the inputs must be a float32 dump")
    report = {"workload": name, **untie(wl, dump)}
    write_dump(path_out, dump)
    print(json.dumps(report))
    return 0


def selection_check(wl, dump):
    """On a float32 dump's inputs: how many choices of the float64 forward passes are
    within their margin of changing (0 once untied); the largest margin as a multiple of
    TIE_MARGIN x RMS (above 1 where PyTorch's float32 error set it); PyTorch's largest
    float32 error on any choice's values as a fraction of that choice's margin."""
    res = {"near": 0, "margin_growth": 1.0, "f32_error_over_margin": 0.0}

    def look(kind, layer, values, inp, delta, err32):
        res["near"] += len(near_ties(kind, values, delta))
        res["margin_growth"] = max(res["margin_growth"], delta / (TIE_MARGIN * rms(values)))
        res["f32_error_over_margin"] = max(res["f32_error_over_margin"], err32 / delta)

    scan_choices(wl, dump, lambda tasks: look)
    return res


# ---- process memory --------------------------------------------------------------------------


def status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ---- modes -------------------------------------------------------------------------------------


def run_time(name, form, threads, min_iters, min_seconds, max_seconds):
    torch.set_num_threads(threads)
    torch.manual_seed(7)
    wl = WORKLOADS[name]
    params = [p.requires_grad_() for p in wl.make_params()]
    step = wl.stepper(params, wl.make_data(), form)
    rss_before = status_kb("VmRSS")
    reset = reset_peak_rss()
    step()  # warm-up
    ms = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        step()
        t1 = time.perf_counter()
        ms.append((t1 - t0) * 1e3)
        n, total = len(ms), t1 - start
        if (n >= min_iters and total >= min_seconds) or (n >= 2 and total >= max_seconds):
            break
    print(json.dumps({"side": "pytorch_" + form, "workload": name, "threads": threads,
                      "torch": torch.__version__, "rss_before_kb": rss_before,
                      "rss_peak_kb": status_kb("VmHWM"), "peak_reset": reset, "ms": ms}))


def read_dump(path):
    out = {}
    with open(path, "rb") as f:
        magic = f.read(8)
        if magic not in (b"MLCMP032", b"MLCMP064"):
            raise ValueError(f"read_dump: {path} is not a bench_compare dump")
        size, dtype = (4, torch.float32) if magic == b"MLCMP032" else (8, torch.float64)
        (count,) = struct.unpack("<I", f.read(4))
        for _ in range(count):
            (n,) = struct.unpack("<I", f.read(4))
            name = f.read(n).decode()
            (rank,) = struct.unpack("<I", f.read(4))
            dims = struct.unpack(f"<{rank}q", f.read(8 * rank))
            numel = math.prod(dims)
            data = torch.frombuffer(bytearray(f.read(size * numel)), dtype=dtype)
            out[name] = data.reshape(dims).clone()
    return out


def dumped_inputs(wl, dump, dtype):
    names = sorted((k for k in dump if k.startswith("param.")), key=lambda k: int(k.split(".")[1]))
    params = [dump[k].to(dtype).requires_grad_() for k in names]
    grads = [dump.get(f"grad.{i}") for i in range(len(names))]
    tasks = []
    t = 0
    classify = wl.kind in EPISODIC or wl.loss is ce
    while f"task.{t}.support_x" in dump:
        sx, sy, qx, qy = (dump.get(f"task.{t}.{k}", torch.zeros(0)) for k in (
            "support_x", "support_y", "query_x", "query_y"))
        if classify:
            sy, qy = sy.round().long(), qy.round().long()
        else:
            sy, qy = sy.to(dtype), qy.to(dtype)
        tasks.append((sx.to(dtype), sy, qx.to(dtype), qy))
        t += 1
    if wl.kind in EPISODIC:
        sx, sy, qx, qy = tasks[0]
        ways = int(sy.max().item()) + 1
        tasks = (sx, sy, qx, qy, ways, sx.shape[0] // ways)
    return params, tasks, grads, [k.split(".", 2)[2] for k in names]


def compare_grads(g, ref, names, floor=1e-3):
    """Worst relative L2 error over the parameter tensors, ||g - ref|| / ||ref||, and
    the relative error of the whole gradient vector. Tensors whose reference norm is
    below `floor` times the whole gradient's norm are left out of the worst case:
    their exact gradient is (numerically) zero, e.g. a convolution bias followed by
    batch norm, and both sides only hold rounding noise there."""
    g = [x.detach().double().flatten() for x in g]
    ref = [x.double().flatten() for x in ref]
    total = torch.cat(ref).norm().item()
    whole = (torch.cat(g) - torch.cat(ref)).norm().item() / max(total, 1e-30)
    worst, worst_name, skipped = 0.0, "-", []
    for a, b, n in zip(g, ref, names):
        if b.norm().item() < floor * total:
            skipped.append(n)
            continue
        e = (a - b).norm().item() / b.norm().item()
        if e >= worst:
            worst, worst_name = e, n
    return {"max_rel_err": worst, "worst_param": worst_name, "whole_rel_err": whole,
            "zero_grad_params": skipped}


def check_form_gradient(wl, params, tasks, label):
    """The gradient of one check form: a form of the workload, or "loop_im2col", its
    loop form with the convolutions computed by conv2d_im2col."""
    if label != "loop_im2col":
        return wl.gradient(params, tasks, label)
    wl.spec.conv = conv2d_im2col
    try:
        return wl.gradient(params, tasks, "loop")
    finally:
        wl.spec.conv = F.conv2d


def run_check(name, path32, path64=None, tol=1e-4, tol64=1e-8):
    """Compares PyTorch's gradient with metalearn's for the dumped parameters and batch,
    whose inputs `untie` has moved away from ties (see there).

    float32 (path32): every PyTorch form in float32 and float64 against metalearn's
    float32 gradient, plus PyTorch's own float32-vs-float64 difference (how well the
    workload is conditioned in float32). On ConvNet workloads PyTorch's loop form runs
    once more with its convolutions as unfold + matmul ("loop_im2col"), the same float32
    math summed in another order. float64 (path64, metalearn's float64 gradient at the
    same inputs): every form in float64 against it; the same math agrees to rounding.
    selections: the choices of the float64 forward passes within the tie margin of
    changing (must be none), and PyTorch's largest float32 error on the values a choice
    is made on, as a fraction of the margin.
    ok: metalearn's float32 gradient within tol of PyTorch's float64 one (with every
    choice at least the margin from changing, every float32 computation accurate to less
    than the margin makes float64's choices, so its gradient differs from the float64
    one by rounding alone), and float64 agreement within tol64. Choices still within the
    margin (where untie did not clear them all) do not change this verdict when the
    gradients agree: a choice that float32 rounding flips adds a jump to one side's
    gradient, which can make correct gradients differ but not make a wrong one agree.
    Where they disagree with choices left near, the caller reports it as undecided.
    strict: also within tol of PyTorch's float32 loop form."""
    torch.set_num_threads(1)
    wl = WORKLOADS[name]
    dump = read_dump(path32)
    report = {"workload": name, "tolerance": tol, "tolerance64": tol64, "forms": {}}
    # The float32 check forms: the workload's own, and on ConvNet workloads the loop
    # with its convolutions as unfold + matmul.
    labels = wl.forms() + (["loop_im2col"] if isinstance(wl.spec, ConvSpec) else [])
    for label in labels:
        got = {}
        for dtype in (torch.float32, torch.float64):
            params, tasks, ref, names = dumped_inputs(wl, dump, dtype)
            got[dtype] = check_form_gradient(wl, params, tasks, label)
            res = compare_grads(got[dtype], ref, names)
            report["forms"][f"{label}_{'f32' if dtype == torch.float32 else 'f64'}"] = res
        # How far PyTorch's own float32 result is from its float64 one: the float32
        # conditioning of the workload, the yardstick for the errors above.
        report["forms"][f"{label}_f32_vs_f64"] = compare_grads(got[torch.float32],
                                                                got[torch.float64], names)
    if path64:
        dump64 = read_dump(path64)
        for form in wl.forms():
            params, tasks, ref, names = dumped_inputs(wl, dump64, torch.float64)
            report["forms"][f"{form}_f64_vs_ml64"] = compare_grads(
                wl.gradient(params, tasks, form), ref, names)
    report["selections"] = selection_check(wl, dump)
    f = report["forms"]

    def err(key):
        return max(f[key]["max_rel_err"], f[key]["whole_rel_err"])

    report["strict"] = err("loop_f32") <= tol
    ok = err("loop_f64") <= tol
    if path64:
        ok = ok and all(err(f"{form}_f64_vs_ml64") <= tol64 for form in wl.forms())
    report["ok"] = ok
    print(json.dumps(report))
    return 0 if ok else 1


def main(argv):
    if len(argv) >= 2 and argv[1] == "list":
        for name, wl in WORKLOADS.items():
            print(name, " ".join(wl.forms()))
        return 0
    if len(argv) in (7, 8) and argv[1] == "time":
        run_time(argv[2], argv[3], int(argv[4]), int(argv[5]), float(argv[6]),
                 float(argv[7]) if len(argv) == 8 else 1e9)
        return 0
    if len(argv) in (4, 5) and argv[1] == "check":
        return run_check(argv[2], argv[3], argv[4] if len(argv) == 5 else None)
    if len(argv) == 5 and argv[1] == "untie":
        return run_untie(argv[2], argv[3], argv[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
