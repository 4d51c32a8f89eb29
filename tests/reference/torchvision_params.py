"""Draws of torchvision's get_params (0.14), for tests/augment/draws.cpp to compare with kiln's.

Input: {"draws": n, "seed": s}. Output: for each transform, each parameter's n values, drawn by
torchvision's own get_params (and, for MixUp and CutMix, by the rules of torchvision's
classification references) from torch's generator seeded with s.
"""
import json
import math
import sys

import torch
import torchvision.transforms as T


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    n = spec["draws"]
    torch.manual_seed(spec["seed"])
    out = {}

    padded = torch.zeros(1, 36, 36)  # 28 x 28 padded by 4
    crops = [T.RandomCrop.get_params(padded, (24, 24)) for _ in range(n)]
    out["random_crop"] = {"top": [c[0] for c in crops], "left": [c[1] for c in crops]}

    image = torch.zeros(1, 30, 40)
    windows = [T.RandomResizedCrop.get_params(image, [0.08, 1.0], [3 / 4, 4 / 3]) for _ in range(n)]
    out["random_resized_crop"] = {k: [w[i] for w in windows] for i, k in enumerate(["top", "left", "height", "width"])}

    out["random_rotation"] = {"angle": [T.RandomRotation.get_params([-30.0, 45.0]) for _ in range(n)]}

    affine = [T.RandomAffine.get_params([-10.0, 10.0], [0.1, 0.2], [0.9, 1.1], [-5.0, 5.0, -3.0, 3.0], [40, 30])
              for _ in range(n)]
    out["random_affine"] = {"angle": [a[0] for a in affine], "tx": [a[1][0] for a in affine],
                            "ty": [a[1][1] for a in affine], "scale": [a[2] for a in affine],
                            "shear_x": [a[3][0] for a in affine], "shear_y": [a[3][1] for a in affine]}

    jitter = [T.ColorJitter.get_params([0.6, 1.4], [0.7, 1.3], [0.8, 1.2], None) for _ in range(n)]
    # where brightness (0) comes among the three operations kiln has (hue, 3, left out)
    position = [[int(i) for i in j[0] if int(i) != 3].index(0) for j in jitter]
    out["color_jitter"] = {"brightness": [j[1] for j in jitter], "contrast": [j[2] for j in jitter],
                           "saturation": [j[3] for j in jitter], "brightness_position": position}

    img = torch.zeros(3, 32, 20)
    erasing = [T.RandomErasing.get_params(img, (0.02, 0.33), (0.3, 3.3), [0.0]) for _ in range(n)]
    out["random_erasing"] = {k: [e[i] for e in erasing] for i, k in enumerate(["top", "left", "height", "width"])}

    out["gaussian_blur"] = {"sigma": [T.GaussianBlur.get_params(0.1, 2.0) for _ in range(n)]}

    out["random_horizontal_flip"] = {"flip": [float(torch.rand(1) < 0.3) for _ in range(n)]}

    lam = [float(torch._sample_dirichlet(torch.tensor([0.4, 0.4]))[0]) for _ in range(n)]
    out["mixup"] = {"lambda": lam}

    boxes = {"y1": [], "y2": [], "x1": [], "x2": []}
    H, W = 30, 40
    for _ in range(n):
        lam = float(torch._sample_dirichlet(torch.tensor([1.0, 1.0]))[0])
        r_x = torch.randint(W, (1,))
        r_y = torch.randint(H, (1,))
        r = 0.5 * math.sqrt(1.0 - lam)
        r_w_half = int(r * W)
        r_h_half = int(r * H)
        boxes["x1"].append(int(torch.clamp(r_x - r_w_half, min=0)))
        boxes["y1"].append(int(torch.clamp(r_y - r_h_half, min=0)))
        boxes["x2"].append(int(torch.clamp(r_x + r_w_half, max=W)))
        boxes["y2"].append(int(torch.clamp(r_y + r_h_half, max=H)))
    out["cutmix"] = boxes

    with open(sys.argv[2], "w") as f:
        json.dump(out, f)


main()
