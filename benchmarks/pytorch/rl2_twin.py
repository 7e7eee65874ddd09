#!/usr/bin/env python3
"""PyTorch twin of metalearn's RL^2 agent (Duan et al. 2016) and its PPO update.

  rl2_twin.py check <dump>        the advantages (GAE, then standardised) and the
                                  gradient of the PPO loss over the dump's trials in
                                  float64, against the ones metalearn wrote (exit 1 if
                                  they differ by more than 1e-10 relative)
  rl2_twin.py time [seconds]      float32 at the torch thread count (OMP_NUM_THREADS,
                                  default 1): environment steps/s of collecting 128
                                  trials of 5-arm bandits with 10 pulls, and seconds per
                                  PPO update (4 epochs x 4 minibatches, GRU 256), the
                                  workload of `bench_rl2 time`

The dump comes from `bench_rl2 dump <file>` (bandits) or `bench_rl2 dump-mdp <file>`
(tabular MDPs): a safetensors file with "param.<name>", "grad.<name>" and
"batch.<array>" ([trials, steps]: observations, actions, rewards, dones, log_probs,
values, advantages, returns), metadata "observations", "actions", "gamma",
"gae_lambda", "clip", "value_coef", "entropy_coef", "normalize_advantages", "loss".

The agent: a GRU cell (PyTorch's layout and gates) whose input at step t is the one-hot
observation, the one-hot previous action (zeros at t = 0), the previous reward and the
previous done flag; from the zero hidden state at the start of a trial, carried through
all its episodes; a linear policy head (logits) and a linear value head. The PPO loss
per row: -min(r A, clip(r, 1 - eps, 1 + eps) A) + value_coef (V - R)^2 / 2 -
entropy_coef H, averaged over the rows; GAE over the whole trial (episode ends inside a
trial do not cut it).
"""
import os
import resource
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors_file import load  # noqa: E402


def encode(obs, prev_action, prev_reward, prev_done, n_obs, n_actions):
    """Inputs [trials, O + A + 2] of one step; prev_action < 0 means none."""
    x = torch.zeros(obs.shape[0], n_obs + n_actions + 2, dtype=prev_reward.dtype)
    x[torch.arange(obs.shape[0]), obs] = 1
    has = prev_action >= 0
    x[torch.arange(obs.shape[0])[has], n_obs + prev_action[has]] = 1
    x[:, n_obs + n_actions] = prev_reward
    x[:, n_obs + n_actions + 1] = prev_done
    return x


def trial_inputs(obs, actions, rewards, dones, n_obs, n_actions):
    """Inputs [steps, trials, O + A + 2] of whole trials."""
    trials, steps = obs.shape
    xs = []
    for t in range(steps):
        if t == 0:
            pa = torch.full((trials,), -1, dtype=torch.long)
            pr = torch.zeros(trials, dtype=rewards.dtype)
            pd = torch.zeros(trials, dtype=rewards.dtype)
        else:
            pa, pr, pd = actions[:, t - 1], rewards[:, t - 1], dones[:, t - 1]
        xs.append(encode(obs[:, t], pa, pr, pd, n_obs, n_actions))
    return torch.stack(xs)


def gae(rewards, values, gamma, lam, normalize):
    """Advantages and value targets [trials, steps]; the whole trial is one episode."""
    adv = torch.zeros_like(rewards)
    next_value = torch.zeros(rewards.shape[0], dtype=rewards.dtype)
    next_adv = torch.zeros_like(next_value)
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        next_adv = delta + gamma * lam * next_adv
        adv[:, t] = next_adv
        next_value = values[:, t]
    ret = adv + values
    if normalize and adv.numel() > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)  # std with n - 1, as metalearn
    return adv, ret


def ppo_loss(logits, values, actions, old_log_probs, adv, ret, clip, value_coef, entropy_coef):
    """Mean over the rows of the clipped surrogate, value and entropy terms."""
    log_pi = F.log_softmax(logits, 1)
    log_prob = log_pi.gather(1, actions[:, None])[:, 0]
    ratio = torch.exp(log_prob - old_log_probs)
    surrogate = torch.min(ratio * adv, torch.clamp(ratio, 1 - clip, 1 + clip) * adv)
    entropy = -(F.softmax(logits, 1) * log_pi).sum(1)
    per_row = -surrogate + value_coef * 0.5 * (values - ret) ** 2 - entropy_coef * entropy
    return per_row.mean()


def check(path):
    tensors, meta = load(path)
    names = [n[len("param."):] for n in tensors if n.startswith("param.")]
    p = {n: tensors["param." + n].to(torch.float64).requires_grad_(True) for n in names}
    b = {k[len("batch."):]: v for k, v in tensors.items() if k.startswith("batch.")}
    n_obs, n_actions = int(meta["observations"]), int(meta["actions"])
    obs, actions = b["observations"].long(), b["actions"].long()
    trials, steps = obs.shape
    adv, ret = gae(b["rewards"], b["values"], float(meta["gamma"]), float(meta["gae_lambda"]),
                   meta["normalize_advantages"] == "1")
    adv_err = ((adv - b["advantages"]).abs() / (1 + adv.abs())).max().item()
    ret_err = ((ret - b["returns"]).abs() / (1 + ret.abs())).max().item()

    xs = trial_inputs(obs, actions, b["rewards"], b["dones"], n_obs, n_actions)
    h = torch.zeros(trials, p["gru.weight_hh"].shape[1], dtype=torch.float64)
    hidden = []
    for t in range(steps):
        h = torch.gru_cell(xs[t], h, p["gru.weight_ih"], p["gru.weight_hh"], p["gru.bias_ih"],
                           p["gru.bias_hh"])
        hidden.append(h)
    hs = torch.cat(hidden)  # rows t * trials + m
    logits = hs @ p["policy.weight"].T + p["policy.bias"]
    values = (hs @ p["value.weight"].T + p["value.bias"])[:, 0]
    rows = lambda a: a.T.reshape(-1)  # noqa: E731  [trials, steps] -> rows t * trials + m
    loss = ppo_loss(logits, values, rows(actions), rows(b["log_probs"]), rows(adv), rows(ret),
                    float(meta["clip"]), float(meta["value_coef"]), float(meta["entropy_coef"]))
    grads = torch.autograd.grad(loss, [p[n] for n in names])
    worst, where = 0.0, ""
    for n, g in zip(names, grads):
        err = ((g - tensors["grad." + n]).abs() / (1.0 + g.abs())).max().item()
        if err > worst:
            worst, where = err, n
    loss_err = abs(loss.item() - float(meta["loss"])) / (1.0 + abs(loss.item()))
    print(f"{trials} trials of {steps} steps, {n_obs} observation(s), {n_actions} actions")
    print(f"advantages: largest relative difference {adv_err:.2e}; returns {ret_err:.2e}")
    print(f"loss: torch {loss.item():.17g}, metalearn {meta['loss']} (relative {loss_err:.2e})")
    print(f"PPO gradient: largest relative difference {worst:.2e} ({where}), "
          f"{sum(g.numel() for g in grads)} values")
    ok = worst <= 1e-10 and loss_err <= 1e-12 and adv_err <= 1e-12 and ret_err <= 1e-12
    print("AGREE" if ok else "DIFFER")
    return 0 if ok else 1


class Agent(torch.nn.Module):
    def __init__(self, n_obs, n_actions, hidden):
        super().__init__()
        self.gru = torch.nn.GRUCell(n_obs + n_actions + 2, hidden)
        self.policy = torch.nn.Linear(hidden, n_actions)
        self.value = torch.nn.Linear(hidden, 1)


def timing(seconds):
    torch.manual_seed(13)
    arms, pulls, trials, hidden = 5, 10, 128, 256
    epochs, minibatches = 4, 4
    agent = Agent(1, arms, hidden)
    opt = torch.optim.Adam(agent.parameters(), lr=1e-3, eps=1e-5)

    def collect():
        """128 trials on fresh bandits (p ~ U[0, 1]), actions sampled from the policy."""
        probs = torch.rand(trials, arms)
        obs = torch.zeros(trials, pulls, dtype=torch.long)
        acts = torch.zeros(trials, pulls, dtype=torch.long)
        rews = torch.zeros(trials, pulls)
        dones = torch.ones(trials, pulls)  # every pull ends its episode
        logps = torch.zeros(trials, pulls)
        vals = torch.zeros(trials, pulls)
        rows = torch.arange(trials)
        with torch.no_grad():
            h = torch.zeros(trials, hidden)
            pa = torch.full((trials,), -1, dtype=torch.long)
            pr = torch.zeros(trials)
            pd = torch.zeros(trials)
            for t in range(pulls):
                x = encode(obs[:, t], pa, pr, pd, 1, arms)
                h = agent.gru(x, h)
                logits = agent.policy(h)
                log_pi = F.log_softmax(logits, 1)
                a = torch.multinomial(log_pi.exp(), 1)[:, 0]
                r = (torch.rand(trials) < probs[rows, a]).float()
                acts[:, t], rews[:, t], logps[:, t] = a, r, log_pi[rows, a]
                vals[:, t] = agent.value(h)[:, 0]
                pa, pr, pd = a, r, dones[:, t]
        return obs, acts, rews, dones, logps, vals

    def update(batch):
        obs, acts, rews, dones, logps, vals = batch
        adv, ret = gae(rews, vals, 0.99, 0.3, True)
        xs = trial_inputs(obs, acts, rews, dones, 1, arms)
        for _ in range(epochs):
            order = torch.randperm(trials)
            for k in range(minibatches):
                part = order[k * trials // minibatches:(k + 1) * trials // minibatches]
                h = torch.zeros(part.numel(), hidden)
                hidden_states = []
                for t in range(pulls):
                    h = agent.gru(xs[t, part], h)
                    hidden_states.append(h)
                hs = torch.cat(hidden_states)
                rows = lambda a: a[part].T.reshape(-1)  # noqa: E731
                loss = ppo_loss(agent.policy(hs), agent.value(hs)[:, 0], rows(acts), rows(logps),
                                rows(adv), rows(ret), 0.2, 0.5, 0.01)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
                opt.step()

    update(collect())  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        collect()
        n += 1
    collect_rate = n * trials * pulls / (time.perf_counter() - t0)
    batch = collect()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        update(batch)
        n += 1
    per_update = (time.perf_counter() - t0) / n
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s): collection "
          f"{collect_rate:.0f} environment steps/s; PPO update {per_update:.4f} s "
          f"(4 epochs x 4 minibatches of 128 trials x 10 steps, GRU 256); peak RSS {rss:.1f} MiB")
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2]))
    if len(sys.argv) >= 2 and sys.argv[1] == "time":
        sys.exit(timing(float(sys.argv[2]) if len(sys.argv) > 2 else 10.0))
    print(__doc__)
    sys.exit(2)
