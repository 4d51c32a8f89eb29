"""Dynamic loss scaling written from the rules PyTorch documents for torch.amp.GradScaler (and
its kernels _amp_foreach_non_finite_check_and_unscale_ / _amp_update_scale_, which LibTorch 1.13
has for CUDA only, so they cannot run here). tests/precision/grad_scaler.cpp checks kiln against it.

usage: grad_scaler_rules.py IN.json OUT.json   (a list of cases, see json_cases.py)

The scale S is a float32 number; the growth tracker an integer.
  unscale: inv = float32(1 / float64(S)); found_inf = any element of any gradient inf or NaN
           (looked at before multiplying); every gradient g <- g * inv (float32 product)
  update:  found_inf: S <- float32(float64(S) * backoff), tracker <- 0
           else if tracker + 1 == growth_interval: S <- float32(float64(S) * growth) if that is
           finite (else S unchanged), tracker <- 0
           else tracker <- tracker + 1

Case kinds:
  "sequence": a list of steps, each a list of (already scaled) gradients; per step: the
              unscaled gradients, found_inf, and S and the tracker after the update.
  "train":    an MLP (in -> hidden -> tanh -> out, float32, weights given) trained with SGD
              (momentum) and StepLR stepped per optimizer step, cross-entropy, on the given
              batches, with the loss scaled before backward. A step with an inf/NaN gradient is
              skipped and does not advance the scheduler (kiln's rule; a plain PyTorch loop
              would call scheduler.step() anyway). Per batch: S after the update, whether the
              step was skipped, the learning rate; at the end the weights.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

from json_cases import answer


class Scaler:
    def __init__(self, o):
        self.scale = np.float32(o["init_scale"])
        self.tracker = 0
        self.growth, self.backoff, self.interval = o["growth_factor"], o["backoff_factor"], o["growth_interval"]

    def unscale(self, grads):
        inv = torch.tensor(np.float32(1.0 / np.float64(self.scale)), dtype=torch.float32)
        found = any(not bool(torch.isfinite(g).all()) for g in grads)
        for g in grads:
            g.mul_(inv)
        return found

    def update(self, found):
        if found:
            self.scale = np.float32(np.float64(self.scale) * self.backoff)
            self.tracker = 0
        elif self.tracker + 1 == self.interval:
            with np.errstate(over="ignore"):
                grown = np.float32(np.float64(self.scale) * self.growth)
            if math.isfinite(grown):
                self.scale = grown
            self.tracker = 0
        else:
            self.tracker += 1


def tensor(t):
    return torch.tensor([float(v) for v in t["data"]], dtype=torch.float32).reshape(t["shape"])


def plain(t):
    # json cannot hold inf/NaN portably: they travel as strings
    return {"shape": list(t.shape), "data": [x if math.isfinite(x) else str(x) for x in t.flatten().tolist()]}


def sequence(case):
    scaler = Scaler(case["options"])
    steps = []
    for grads in case["steps"]:
        grads = [tensor(g) for g in grads]
        found = scaler.unscale(grads)
        scaler.update(found)
        steps.append({"grads": [plain(g) for g in grads], "found_inf": found,
                      "scale": float(scaler.scale), "tracker": scaler.tracker})
    return {"steps": steps}


class Mlp(torch.nn.Module):
    def __init__(self, n_in, hidden, n_out):
        super().__init__()
        self.fc1 = torch.nn.Linear(n_in, hidden)
        self.act = torch.nn.Tanh()
        self.fc2 = torch.nn.Linear(hidden, n_out)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def train(case):
    n_in, hidden, n_out = case["sizes"]
    model = Mlp(n_in, hidden, n_out)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(tensor(case["weights"][name]))
    opt = torch.optim.SGD(model.parameters(), lr=case["lr"], momentum=case["momentum"])
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=case["step_size"], gamma=case["gamma"])
    scaler = Scaler(case["options"])
    out = {"scale": [], "skipped": [], "lr": []}
    for batch in case["batches"]:
        x, y = tensor(batch["x"]), torch.tensor(batch["y"], dtype=torch.int64)
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        (loss * torch.tensor([scaler.scale], dtype=torch.float32)).backward()
        found = scaler.unscale([p.grad for p in model.parameters() if p.grad is not None])
        if not found:
            opt.step()
            sched.step()
        scaler.update(found)
        out["scale"].append(float(scaler.scale))
        out["skipped"].append(found)
        out["lr"].append(opt.param_groups[0]["lr"])
    out["weights"] = {name: plain(p.detach()) for name, p in model.named_parameters()}
    return out


def compute(case):
    return sequence(case) if case["kind"] == "sequence" else train(case)


if __name__ == "__main__":
    answer(compute)
