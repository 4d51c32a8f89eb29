#!/usr/bin/python3
"""torchvision's architectures for tests/models/models.cpp.

Each case: {"arch", "seed", "input": [N, C, H, W], "classes", "lr", "dir"}. The script builds
torchvision.models.<arch>(num_classes=classes) after torch.manual_seed(seed), saves its state_dict
to <dir>/<arch>-weights.pth with torch.save, and to <dir>/<arch>-expected.pth (torch.save of a
dict of tensors):
  input       torch.randn(input) drawn after the model;
  eval        the eval-mode output on it;
  train       the training-mode output (BatchNorm on the batch's statistics, updating its
              running ones; dropout and stochastic depth draw from the generator as they run);
  after_step  after one SGD step (lr) on cross-entropy against targets i mod classes from that
              training-mode output, the eval-mode output again.
The answer: {"weights": path, "expected": path}.
"""
import os

import torch
import torchvision

from json_cases import answer


def compute(case):
    torch.manual_seed(case["seed"])
    model = getattr(torchvision.models, case["arch"])(num_classes=case["classes"])
    weights = os.path.join(case["dir"], f"{case['arch']}-weights.pth")
    torch.save(model.state_dict(), weights)
    x = torch.randn(case["input"])
    model.eval()
    with torch.no_grad():
        evaluated = model(x)
    model.train()
    torch.manual_seed(case["seed"] + 1)
    trained = model(x)
    targets = torch.arange(x.shape[0]) % case["classes"]
    optimizer = torch.optim.SGD(model.parameters(), lr=case["lr"])
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(trained, targets).backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        after = model(x)
    expected = os.path.join(case["dir"], f"{case['arch']}-expected.pth")
    torch.save({"input": x, "eval": evaluated, "train": trained.detach(), "after_step": after}, expected)
    return {"weights": weights, "expected": expected}


answer(compute)
