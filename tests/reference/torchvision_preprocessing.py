#!/usr/bin/python3
"""torchvision's weights.transforms() for tests/models/models.cpp.

Each case: {"weights": "ResNet50_Weights.IMAGENET1K_V2", "images": nested list [N, 3, H, W],
"dtype": "uint8" | "float32", "out": path}. The preset is applied to the batch as a tensor, and
the result saved with torch.save({"out": result}) to `out`. The answer: the preset's resize and
crop sizes.
"""
import torch
import torchvision.models as models

from json_cases import answer


def compute(case):
    enum_name, member = case["weights"].split(".")
    weights = getattr(getattr(models, enum_name), member)
    preset = weights.transforms()
    images = torch.tensor(case["images"], dtype=getattr(torch, case["dtype"]))
    torch.save({"out": preset(images)}, case["out"])
    return {"resize": preset.resize_size[0], "crop": preset.crop_size[0]}


answer(compute)
