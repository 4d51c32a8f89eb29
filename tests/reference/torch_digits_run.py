"""The plain PyTorch training run that tests/run/digits_run.cpp repeats with kiln.

usage: torch_digits_run.py IN.json OUT.json

IN: the run's settings and the MLP's initial weights (written by the C++ test). The script loads
scikit-learn's digits table (8x8 images / 16, as float64), puts it in a fixed random order
(numpy seed IN["seed"]) and keeps the first IN["samples"] rows, then trains, in float64:
  MLP 64 -> hidden -> tanh -> 10, SGD(momentum, weight_decay), cross-entropy with label smoothing,
  SequentialLR([LinearLR(start_factor, 1.0, warmup), CosineAnnealingLR(T_max, eta_min)], [warmup])
  stepped after every optimizer step, gradient accumulation over 2 batches (loss / 2, step every 2),
  batches taken in order, without shuffling.
OUT: the data in that order (so that kiln trains on the same rows in the same batches), the loss
of each epoch (mean over samples of the batch losses) and the final weights.
"""
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.optim import lr_scheduler


class Mlp(torch.nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.fc1 = torch.nn.Linear(64, hidden)
        self.fc2 = torch.nn.Linear(hidden, 10)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


def main():
    with open(sys.argv[1]) as f:
        run = json.load(f)
    digits = load_digits()
    order = np.random.RandomState(run["seed"]).permutation(len(digits.target))[: run["samples"]]
    x = torch.tensor(digits.data[order] / 16.0, dtype=torch.float64)
    y = torch.tensor(digits.target[order], dtype=torch.int64)

    torch.set_default_dtype(torch.float64)
    model = Mlp(run["hidden"])
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.tensor(run["weights"][name]["data"]).reshape(run["weights"][name]["shape"]))
    optimizer = torch.optim.SGD(model.parameters(), lr=run["lr"], momentum=run["momentum"],
                                weight_decay=run["weight_decay"])
    warmup = lr_scheduler.LinearLR(optimizer, start_factor=run["start_factor"], end_factor=1.0,
                                   total_iters=run["warmup"])
    cosine = lr_scheduler.CosineAnnealingLR(optimizer, T_max=run["t_max"], eta_min=run["eta_min"])
    scheduler = lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[run["warmup"]])

    accumulate, batch = run["accumulate"], run["batch_size"]
    batches = [(x[i:i + batch], y[i:i + batch]) for i in range(0, len(y), batch)]
    assert len(batches) % accumulate == 0, "no partial accumulation window in this run"
    epoch_losses = []
    for _ in range(run["epochs"]):
        model.train()
        total = 0.0
        for i, (xb, yb) in enumerate(batches):
            if i % accumulate == 0:
                optimizer.zero_grad()
            loss = F.cross_entropy(model(xb), yb, label_smoothing=run["label_smoothing"])
            (loss / accumulate).backward()
            total += loss.item() * len(yb)
            if (i + 1) % accumulate == 0:
                optimizer.step()
                scheduler.step()
        epoch_losses.append(total / len(y))

    with open(sys.argv[2], "w") as f:
        json.dump({
            "x": x.reshape(-1).tolist(), "y": y.tolist(), "epoch_losses": epoch_losses,
            "weights": {name: p.detach().reshape(-1).tolist() for name, p in model.named_parameters()},
        }, f)


if __name__ == "__main__":
    import warnings
    warnings.simplefilter("ignore")  # SequentialLR's step(0) warns that epoch arguments are deprecated
    main()
