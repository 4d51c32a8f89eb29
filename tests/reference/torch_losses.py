"""PyTorch's loss values and input gradients for the cases tests/loss/parity.cpp writes.

usage: torch_losses.py IN.json OUT.json

Each case names a loss and its options and carries its tensors as {"shape", "data"} (float64, or
int64 for class targets). The loss is computed with torch.nn.functional / torchvision.ops in
float64; its gradient with respect to the input comes from autograd, after multiplying a
reduction-"none" loss by the case's "upstream" tensor and summing. Output, per case:
{"value": [flat], "grad": [flat]}.
"""
import json_cases

import torch
import torch.nn.functional as F
import torchvision


def tensor(spec, dtype=torch.float64):
    if spec is None:
        return None
    return torch.tensor(spec["data"], dtype=dtype).reshape(spec["shape"])


def softmax_focal(x, y, alpha, gamma, ignore_index, reduction):
    """loss_i = -alpha[y_i] (1 - p_i)^gamma log p_i, p_i = softmax(x_i)[y_i]; ignored samples give 0
    and are not counted in the mean. Written from cross_entropy (= -log p_i) rather than the
    log_softmax/gather that kiln uses, so that the two sides are computed differently."""
    ce = F.cross_entropy(x, y, reduction="none", ignore_index=ignore_index)
    counted = y != ignore_index
    loss = (1 - torch.exp(-ce)) ** gamma * ce
    if alpha is not None:
        loss = alpha[torch.where(counted, y, torch.zeros_like(y))] * loss
    loss = torch.where(counted, loss, torch.zeros_like(loss))
    if reduction == "mean":
        return loss.sum() / counted.sum()
    return loss.sum() if reduction == "sum" else loss


def compute(case):
    kind, reduction = case["loss"], case["reduction"]
    x = tensor(case["input"]).requires_grad_(True)
    weight = tensor(case.get("weight"))
    if kind == "cross_entropy":
        probabilities = case["target"].get("probabilities", False)
        y = tensor(case["target"], torch.float64 if probabilities else torch.int64)
        loss = F.cross_entropy(x, y, weight=weight, ignore_index=case["ignore_index"], reduction=reduction,
                               label_smoothing=case["label_smoothing"])
    elif kind == "sigmoid_focal_loss":
        loss = torchvision.ops.sigmoid_focal_loss(x, tensor(case["target"]), alpha=case["alpha"],
                                                  gamma=case["gamma"], reduction=reduction)
    elif kind == "softmax_focal_loss":
        loss = softmax_focal(x, tensor(case["target"], torch.int64), tensor(case.get("alpha")), case["gamma"],
                             case["ignore_index"], reduction)
    elif kind == "bce_with_logits":
        loss = F.binary_cross_entropy_with_logits(x, tensor(case["target"]), weight=weight,
                                                  pos_weight=tensor(case.get("pos_weight")), reduction=reduction)
    elif kind == "mse":
        loss = F.mse_loss(x, tensor(case["target"]), reduction=reduction)
    elif kind == "l1":
        loss = F.l1_loss(x, tensor(case["target"]), reduction=reduction)
    elif kind == "huber":
        loss = F.huber_loss(x, tensor(case["target"]), reduction=reduction, delta=case["delta"])
    elif kind == "smooth_l1":
        loss = F.smooth_l1_loss(x, tensor(case["target"]), reduction=reduction, beta=case["beta"])
    else:
        raise ValueError("unknown loss " + kind)
    scalar = (loss * tensor(case["upstream"])).sum() if reduction == "none" else loss
    scalar.backward()
    return {"value": loss.detach().reshape(-1).tolist(), "grad": x.grad.reshape(-1).tolist()}


def main():
    json_cases.answer(compute)


if __name__ == "__main__":
    main()
