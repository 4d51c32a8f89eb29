"""PyTorch's learning-rate sequences for the cases tests/schedule/parity.cpp writes.

usage: torch_schedulers.py IN.json OUT.json

IN is a list of cases: {"name", "scheduler": spec, "lrs": [per group], "optimizer": "sgd" | "adam",
"momentum", "advances", "metrics": [one per advance, for plateau]}. For each, the script builds
that optimizer and torch.optim.lr_scheduler's scheduler, records every group's lr (and momentum,
or Adam's beta1) after construction and after each of the advances (optimizer.step() then
scheduler.step(), PyTorch's documented order), and writes [{"lr": [[...]], "momentum": [[...]]}].
"""
import json_cases
import warnings

import torch
from torch.optim import lr_scheduler as sched


class WarmupThenPlateau:
    """kiln::warmup<kiln::reduce_on_plateau>: LinearLR for advances 1 .. length-1; at advance
    `length` every group goes back to its initial lr and a fresh ReduceLROnPlateau takes over,
    stepped with the metrics of the later advances. (SequentialLR cannot hold ReduceLROnPlateau;
    this is its hand-over, made with PyTorch's own classes.)"""

    def __init__(self, optimizer, length, start_factor, plateau):
        self.optimizer = optimizer
        self.linear = sched.LinearLR(optimizer, start_factor=start_factor, end_factor=1.0, total_iters=length)
        self.length = length
        self.plateau_spec = plateau
        self.plateau = None
        self.t = 0

    def step(self, metric):
        self.t += 1
        if self.t < self.length:
            self.linear.step()
        elif self.t == self.length:
            for group in self.optimizer.param_groups:
                group["lr"] = group["initial_lr"]
            self.plateau = make(self.optimizer, self.plateau_spec)
        else:
            self.plateau.step(metric)


def make(optimizer, spec):
    kind = spec["kind"]
    if kind == "constant":
        return sched.LambdaLR(optimizer, lambda _: 1.0)
    if kind == "step":
        return sched.StepLR(optimizer, step_size=spec["step_size"], gamma=spec["gamma"])
    if kind == "multi_step":
        return sched.MultiStepLR(optimizer, milestones=spec["milestones"], gamma=spec["gamma"])
    if kind == "exponential":
        return sched.ExponentialLR(optimizer, gamma=spec["gamma"])
    if kind == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=spec["T_max"], eta_min=spec["eta_min"])
    if kind == "warm_restarts":
        return sched.CosineAnnealingWarmRestarts(optimizer, T_0=spec["T_0"], T_mult=spec["T_mult"],
                                                 eta_min=spec["eta_min"])
    if kind == "plateau":
        return sched.ReduceLROnPlateau(optimizer, mode=spec["mode"], factor=spec["factor"],
                                       patience=spec["patience"], threshold=spec["threshold"],
                                       threshold_mode=spec["threshold_mode"], cooldown=spec["cooldown"],
                                       min_lr=spec["min_lr"], eps=spec["eps"])
    if kind == "one_cycle":
        return sched.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                total_steps=spec["total_steps"], pct_start=spec["pct_start"],
                                anneal_strategy=spec["anneal_strategy"], cycle_momentum=spec["cycle_momentum"],
                                base_momentum=spec["base_momentum"], max_momentum=spec["max_momentum"],
                                div_factor=spec["div_factor"], final_div_factor=spec["final_div_factor"],
                                three_phase=spec["three_phase"])
    if kind == "warmup":
        then = spec["then"]
        if then["kind"] == "plateau":
            return WarmupThenPlateau(optimizer, spec["length"], spec["start_factor"], then)
        linear = sched.LinearLR(optimizer, start_factor=spec["start_factor"], end_factor=1.0,
                                total_iters=spec["length"])
        return sched.SequentialLR(optimizer, [linear, make(optimizer, then)], milestones=[spec["length"]])
    raise ValueError("unknown scheduler kind " + kind)


def momentum_of(group):
    return group["betas"][0] if "betas" in group else group.get("momentum", 0.0)


def run(case):
    groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in case["lrs"]]
    if case["optimizer"] == "adam":
        optimizer = torch.optim.Adam(groups, lr=case["lrs"][0], betas=(case["momentum"], 0.999))
    else:
        optimizer = torch.optim.SGD(groups, lr=case["lrs"][0], momentum=case["momentum"])
    scheduler = make(optimizer, case["scheduler"])
    uses_metric = case["scheduler"]["kind"] == "plateau" or case["scheduler"].get("then", {}).get("kind") == "plateau"
    lrs, momenta = [], []

    def record():
        lrs.append([g["lr"] for g in optimizer.param_groups])
        momenta.append([momentum_of(g) for g in optimizer.param_groups])

    record()
    for t in range(case["advances"]):
        optimizer.step()
        if uses_metric:
            scheduler.step(case["metrics"][t])
        else:
            scheduler.step()
        record()
    return {"lr": lrs, "momentum": momenta}


def main():
    warnings.simplefilter("ignore")  # SequentialLR's step(0) warns that epoch arguments are deprecated
    json_cases.answer(run)


if __name__ == "__main__":
    main()
