#!/usr/bin/python3
"""Writes a torchvision resnet18 weight file for examples/resnet_mnist.cpp where the published
ImageNet file cannot be downloaded (CI): torchvision's own seeded initialisation, with its
BatchNorm running statistics measured on MNIST digits (forward passes in training mode, no
gradient, nothing else learnt), prepared as the example prepares them.

    torchvision_weights.py <mnist dir> <out.pth>
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    root, out = sys.argv[1], sys.argv[2]
    images = torch.from_numpy(read_idx(f"{root}/train-images-idx3-ubyte")[:2000].copy()).float().div(255).unsqueeze(1)
    x = F.interpolate(images, size=(32, 32), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # a cumulative average over the batches below
    model.train()
    with torch.no_grad():
        for batch in x.split(250):
            model(batch)
    torch.save(model.state_dict(), out)


main()
