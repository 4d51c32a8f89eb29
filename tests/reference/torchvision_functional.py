"""torchvision.transforms.functional on the cases of tests/augment/image.cpp.

Input: {"cases": [{"op": name, "images": flat values, "shape": [N, C, H, W], "params": [per-image
dicts], "args": {shared arguments}}]}. Output: {"results": [flat values of the N results, in
order]}. Each image goes through torchvision alone, as a [C, H, W] float32 tensor.
"""
import json
import sys

import torch
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode

MODES = {"nearest": InterpolationMode.NEAREST, "bilinear": InterpolationMode.BILINEAR}


def one(op, img, p, a):
    c = img.shape[0]
    if op == "hflip":
        return F.hflip(img)
    if op == "vflip":
        return F.vflip(img)
    if op == "pad":
        return F.pad(img, [a["left"], a["top"], a["right"], a["bottom"]], fill=a["fill"], padding_mode=a["mode"])
    if op == "crop":
        return F.crop(img, p["top"], p["left"], a["height"], a["width"])
    if op == "resize":
        return F.resize(img, [a["height"], a["width"]], interpolation=MODES[a["mode"]])
    if op == "resized_crop":
        return F.resized_crop(img, p["top"], p["left"], p["height"], p["width"], [a["height"], a["width"]],
                              interpolation=InterpolationMode.BILINEAR)
    if op == "center_crop":
        return F.center_crop(img, [a["height"], a["width"]])
    if op == "affine":
        return F.affine(img, angle=p["angle"], translate=[p["tx"], p["ty"]], scale=p["scale"],
                        shear=[p["shear_x"], p["shear_y"]], interpolation=MODES[a["mode"]], fill=[a["fill"]] * c)
    if op == "rotate":
        return F.rotate(img, p["angle"], interpolation=MODES[a["mode"]], fill=[a["fill"]] * c)
    if op == "brightness":
        return F.adjust_brightness(img, p["factor"])
    if op == "contrast":
        return F.adjust_contrast(img, p["factor"])
    if op == "saturation":
        return F.adjust_saturation(img, p["factor"])
    if op == "grayscale":
        return F.rgb_to_grayscale(img)
    if op == "normalize":
        return F.normalize(img, a["mean"], a["std"])
    if op == "erase":
        if not p["apply"]:
            return img
        v = torch.tensor(a["value"], dtype=img.dtype)[:, None, None]
        return F.erase(img, p["top"], p["left"], p["height"], p["width"], v)
    if op == "gaussian_blur":
        return F.gaussian_blur(img, [a["kernel_width"], a["kernel_height"]], [p["sigma"], p["sigma"]])
    raise ValueError(op)


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)["cases"]
    results = []
    for case in cases:
        images = torch.tensor(case["images"], dtype=torch.float64).to(torch.float32).reshape(case["shape"])
        outs = [one(case["op"], images[i], case["params"][i] if case["params"] else {}, case.get("args", {}))
                for i in range(images.shape[0])]
        results.append([float(v) for v in torch.stack(outs).flatten().tolist()])
    with open(sys.argv[2], "w") as f:
        json.dump({"results": results}, f)


main()
