#!/usr/bin/python3
"""torchvision's resnet50 run by PyTorch eager on the CPU: the pair of bench/resnet50.cpp.

Same batch (4 × 3 × 224 × 224), same iterations (5 forwards, 3 training steps, each after one
warm-up), three repetitions; prints each repetition's milliseconds per iteration and the median.
"""
import statistics
import sys
import time

import torch
import torchvision


def timed(function, iterations):
    function()  # warm-up
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(iterations):
            function()
        runs.append((time.perf_counter() - started) / iterations * 1000)
    return runs


def main():
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads())
    torch.manual_seed(0)
    model = torchvision.models.resnet50()
    x = torch.randn(4, 3, 224, 224)
    y = torch.arange(4)
    model.eval()

    def forward():
        with torch.no_grad():
            return model(x)

    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    runs = timed(forward, 5)
    print(f"torchvision/resnet50/forward      median {statistics.median(runs):8.1f} ms   runs {', '.join(f'{r:.1f}' for r in runs)}")
    model.train()
    runs = timed(step, 3)
    print(f"torchvision/resnet50/train_step   median {statistics.median(runs):8.1f} ms   runs {', '.join(f'{r:.1f}' for r in runs)}")
    print(f"(PyTorch {torch.__version__}, torchvision {torchvision.__version__}, {torch.get_num_threads()} threads)")


main()
