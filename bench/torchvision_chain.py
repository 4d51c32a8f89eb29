"""torchvision's per-sample tensor transforms on the chain of bench/augment.cpp: random crop with
padding 4, horizontal flip, normalize, each of 256 images 3 x 32 x 32 transformed alone, as a
Dataset's __getitem__ does, in one process and one thread. Prints milliseconds per batch (the
median of `repeats` timings)."""
import statistics
import sys
import time

import torch
import torchvision.transforms as T


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    torch.set_num_threads(1)
    torch.manual_seed(0)
    images = torch.rand(256, 3, 32, 32)
    chain = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(),
                       T.Normalize((0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261))])
    for image in images[:32]:  # warm-up
        chain(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = torch.stack([chain(image) for image in images])
        times.append((time.perf_counter() - start) * 1000)
    assert out.shape == images.shape
    print(f"{statistics.median(times):.3f}")


main()
