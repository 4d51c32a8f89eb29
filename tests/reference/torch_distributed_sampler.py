#!/usr/bin/python3
"""PyTorch's DistributedSampler for tests/data/distributed_sampler.cpp.

Each case: {"samples", "world_size", "rank", "seed", "epoch", "shuffle", "tail"} with tail one of
"pad" (drop_last=False), "drop" (drop_last=True) or "uneven". The answer: the indices the process
reads in that epoch. "uneven" is not a DistributedSampler mode: it is the same order, unpadded,
taken from position rank in steps of world_size (Lightning's UnrepeatedDistributedSampler).
"""
import torch
from torch.utils.data.distributed import DistributedSampler

from json_cases import answer


def compute(case):
    tail = case["tail"]
    sampler = DistributedSampler(range(case["samples"]), num_replicas=case["world_size"], rank=case["rank"],
                                 shuffle=case["shuffle"], seed=case["seed"], drop_last=tail == "drop")
    sampler.set_epoch(case["epoch"])
    if tail != "uneven":
        return list(iter(sampler))
    if case["shuffle"]:
        g = torch.Generator()
        g.manual_seed(case["seed"] + case["epoch"])
        order = torch.randperm(case["samples"], generator=g).tolist()
    else:
        order = list(range(case["samples"]))
    return order[case["rank"]::case["world_size"]]


answer(compute)
