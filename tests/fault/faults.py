"""Fault tests: a training process killed at random moments never loses its run.

    faults.py <kiln_fault_run> <work-dir> [kills]

1. A reference run trains to the end without interruption.
2. Another run is started again and again and killed with SIGKILL after a random delay, often
   inside a checkpoint write. After every kill, each checkpoint on disk must load. Finally the
   run is allowed to finish: its weights must equal the reference's, bit for bit, and no
   temporary file of an interrupted write may be left behind.
3. SIGINT and SIGTERM: the process must end by that signal after writing interrupted.pt, and
   the run resumed from it must also end equal to the reference.
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import time

EPOCHS = "3"


def run(binary, *args, check=True):
    result = subprocess.run([binary, *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        sys.exit(f"FAIL: {' '.join(args)} exited {result.returncode}\n{result.stdout}{result.stderr}")
    return result


def checkpoints(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".pt"))


def main():
    binary, work = sys.argv[1], sys.argv[2]
    kills = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    rng = random.Random(int(os.environ.get("KILN_FAULT_SEED", "1")))
    shutil.rmtree(work, ignore_errors=True)
    reference, victim = os.path.join(work, "reference"), os.path.join(work, "killed")
    os.makedirs(reference)
    os.makedirs(victim)

    start = time.monotonic()
    run(binary, "train", reference, EPOCHS)
    duration = time.monotonic() - start
    print(f"reference run: {duration:.2f} s")

    kills_done, in_write, completed = 0, 0, 0
    while kills_done < kills:
        process = subprocess.Popen([binary, "train", victim, EPOCHS], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.0, duration))
        process.send_signal(signal.SIGKILL)
        _, err = process.communicate()
        if process.returncode == 0:  # it finished first: check it, then start the run afresh
            run(binary, "same", os.path.join(victim, "final.pt"), os.path.join(reference, "final.pt"))
            completed += 1
            shutil.rmtree(victim)
            os.makedirs(victim)
            continue
        if process.returncode != -signal.SIGKILL:
            sys.exit(f"FAIL: the run failed by itself (exit {process.returncode})\n{err.decode()}")
        kills_done += 1
        in_write += any(".tmp." in name for name in os.listdir(victim))
        for name in checkpoints(victim):
            run(binary, "check", os.path.join(victim, name))
    print(f"{kills_done} kills ({in_write} during a checkpoint write); every checkpoint on disk loaded after each; "
          f"{completed} runs completed between kills, each equal to the reference")

    run(binary, "train", victim, EPOCHS)
    run(binary, "same", os.path.join(victim, "final.pt"), os.path.join(reference, "final.pt"))
    leftovers = [name for name in os.listdir(victim) if ".tmp." in name]
    if leftovers:
        sys.exit(f"FAIL: temporary files of interrupted writes were left behind: {leftovers}")
    print("resumed after the kills: final weights equal the reference's, bit for bit; no temporary files left")

    for sig in (signal.SIGINT, signal.SIGTERM):
        directory = os.path.join(work, sig.name)
        while True:
            shutil.rmtree(directory, ignore_errors=True)
            os.makedirs(directory)
            process = subprocess.Popen([binary, "train", directory, EPOCHS], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE)
            # Once the first epoch's checkpoint exists the handlers are surely installed.
            while process.poll() is None and not os.path.exists(os.path.join(directory, "last.pt")):
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.3 * duration))
            process.send_signal(sig)
            _, err = process.communicate()
            if process.returncode == 0:
                continue  # it finished first; try again
            if process.returncode != -sig:
                sys.exit(f"FAIL: after {sig.name} the process exited {process.returncode}, not by the signal\n{err.decode()}")
            break
        if not os.path.exists(os.path.join(directory, "interrupted.pt")):
            sys.exit(f"FAIL: {sig.name} left no interrupted.pt")
        run(binary, "check", os.path.join(directory, "interrupted.pt"))
        run(binary, "train", directory, EPOCHS)
        run(binary, "same", os.path.join(directory, "final.pt"), os.path.join(reference, "final.pt"))
        print(f"{sig.name}: ended by the signal with interrupted.pt written; resumed to the reference's weights")

if __name__ == "__main__":
    main()
