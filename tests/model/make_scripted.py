"""Writes a TorchScript torchvision ResNet-18 and its reference outputs for tests/model/scripted.cpp.

Usage: make_scripted.py OUT_DIR
  OUT_DIR/resnet18.pt        torch.jit.script of torchvision.models.resnet18 (random weights, seed 0)
  OUT_DIR/reference.txt      its eval-mode output for a fixed input, one number per line
The fixed input is linspace(-1, 1, 2*3*32*32) reshaped to [2, 3, 32, 32]; the C++ test builds
the same input.
"""
import sys

import torch
import torchvision

out = sys.argv[1]
torch.manual_seed(0)
model = torchvision.models.resnet18(num_classes=10)
model.eval()
scripted = torch.jit.script(model)
scripted.save(f"{out}/resnet18.pt")
x = torch.linspace(-1, 1, 2 * 3 * 32 * 32).reshape(2, 3, 32, 32)
with torch.no_grad():
    y = model(x)
with open(f"{out}/reference.txt", "w") as f:
    for v in y.flatten().tolist():
        f.write(repr(v) + "\n")
