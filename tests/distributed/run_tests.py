#!/usr/bin/env python3
"""Data-parallel tests: two processes over Gloo on this machine, each scenario bounded in time.

    run_tests.py <worker> <work dir>

- equality (torchrun --standalone, 2 processes): tests/distributed/worker.cpp checks each process
  against one process with the whole batch;
- mismatch (torchrun's static rendezvous, whose agent serves the store): models that differ fail in every process, naming the tensor;
- die (two processes started here, as torchrun would, without its agent): rank 1 dies in its
  second epoch; rank 0 must stop with kiln's message, status 42, well within its 20 s timeout;
- elastic: an uninterrupted torchrun run, then one with --max_restarts=1 in which rank 1 kills
  itself (SIGKILL) in epoch 2: the restart resumes from the last checkpoint and ends with the
  same weights, digit for digit.

torchrun is Debian's (PyTorch 1.13) under Python 3.11, which cannot parse its own default for
--redirects and --tee: -r 1 -t 1 (stdout to a log and to the console, prefixed with the rank).
"""
import os
import socket
import subprocess
import sys
import time

TORCHRUN = ["/usr/bin/python3", "-m", "torch.distributed.run"]


def torchrun(args, worker, scenario, *rest, timeout=300, env=None):
    command = TORCHRUN + args + ["--no_python", "-r", "1", "-t", "1", worker, scenario, *rest]
    print("$", " ".join(command), flush=True)
    started = time.monotonic()
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                            env=env)
    print(result.stdout[-6000:], flush=True)
    print(f"({time.monotonic() - started:.1f} s, status {result.returncode})", flush=True)
    return result


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def expect(ok, what):
    if not ok:
        print("FAILED:", what, flush=True)
        sys.exit(1)
    print("ok:", what, flush=True)


def main():
    worker, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    standalone = ["--standalone", "--nproc_per_node=2"]

    result = torchrun(standalone, worker, "equality")
    expect(result.returncode == 0, "2 processes end within 1e-6 of one process (SGD, AdamW, accumulate<3>), metrics equal")

    # torchrun's static rendezvous: its agent serves the store (TORCHELASTIC_USE_AGENT_STORE).
    result = torchrun(["--nnodes=1", "--nproc_per_node=2", "--master_addr=127.0.0.1", f"--master_port={free_port()}"],
                      worker, "mismatch")
    expect(result.returncode == 0 and result.stdout.count("the processes' models differ") == 2,
           "a model that differs between processes fails in both, naming the parameter and the ranks")

    port = free_port()
    processes = []
    started = time.monotonic()
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port), OMP_NUM_THREADS="1")
        processes.append(subprocess.Popen([worker, "die", work], env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=120)[0] for p in processes]
    elapsed = time.monotonic() - started
    print(outputs[0], outputs[1], f"({elapsed:.1f} s)", sep="\n", flush=True)
    expect(processes[1].returncode == 3, "rank 1 died as planned")
    expect(processes[0].returncode == 42 and "lost the other processes" in outputs[0],
           "rank 0 stops with a message that says the others are lost")
    expect(elapsed < 60, f"and does so within the timeout ({elapsed:.1f} s)")

    whole, restarted = os.path.join(work, "whole"), os.path.join(work, "restarted")
    for d in (whole, restarted):
        subprocess.run(["rm", "-rf", d], check=True)
        os.makedirs(d)
    result = torchrun(standalone, worker, "elastic", whole)
    expect(result.returncode == 0, "the uninterrupted run")
    env = dict(os.environ, KILN_TEST_KILL_AT="2")
    result = torchrun(["--nnodes=1", "--nproc_per_node=2", "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{free_port()}",
                       "--max_restarts=1"], worker, "elastic", restarted, env=env)
    expect(result.returncode == 0, "the run with a restart")
    expect("ending now, epoch 2" in result.stdout and "resumes from" in result.stdout,
           "rank 1 died in epoch 2 and the restarted processes resumed from the checkpoint")
    with open(os.path.join(whole, "final.txt")) as a, open(os.path.join(restarted, "final.txt")) as b:
        expect(a.read() == b.read(), "the restarted run ends with the uninterrupted run's weights and accuracy")


if __name__ == "__main__":
    main()
