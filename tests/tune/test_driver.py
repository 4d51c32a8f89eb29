#!/usr/bin/python3
"""Tests of the study driver, tools/kiln_optuna.py, against a real kiln program.

    /usr/bin/python3 tests/tune/test_driver.py --program build/examples/tune_breast_cancer \\
        [--program-arg ARG ...] [unittest options, test names]

--program-arg takes the next word as it is, so "--program-arg --set --program-arg
data.path=data/breast_cancer.csv" passes an option. The program must speak the driver's
protocol (tools/README.md), log MONITOR after each epoch, be deterministic, and declare a space
in which one categorical param (optimizer.type) selects conditional params, among them the
learning rate of BAD_PARAMS. Param names are read from its space except those of BAD_PARAMS.
The program runs with this process's working directory; each test writes under its own
temporary directory. Exits non-zero when a test fails.
"""
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import warnings

import optuna

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRIVER = os.path.join(ROOT, "tools", "kiln_optuna.py")
MONITOR, DIRECTION = "val/auroc", "maximize"
# A learning rate far below the space's range: the network barely moves from its random start,
# so the median pruner stops the trial once good trials have completed.
BAD_PARAMS = {"optimizer.type": "adamw", "optimizer.adamw.lr": 1e-7}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

PROGRAM = []  # the program and its arguments, from the command line
SPACE = []  # the program's search space: {"name", "distribution", "when"?} in its order

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def read_space():
    result = subprocess.run(PROGRAM + ["--print-search-space"], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["params"]


def epoch_records(log_path):
    with open(log_path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return records, [r for r in records if "epoch" in r]


def edge_values(param):
    """The first and the last value a param can take."""
    d = param["distribution"]
    if d["name"] == "CategoricalDistribution":
        return d["attributes"]["choices"][0], d["attributes"]["choices"][-1]
    return d["attributes"]["low"], d["attributes"]["high"]


def middle_value(param):
    """A value in the middle of a param's range (geometric for a log scale; on its step); a
    categorical param's first choice."""
    d, a = param["distribution"]["name"], param["distribution"]["attributes"]
    if d == "CategoricalDistribution":
        return a["choices"][0]
    low, high, step = a["low"], a["high"], a.get("step")
    if a.get("log"):
        middle = (low * high) ** 0.5
        return round(middle) if d == "IntDistribution" else middle
    if step:
        return low + step * round((high - low) / step / 2)
    return (low + high) / 2


def applies(param, chosen):
    return all(name in chosen and chosen[name] in values for name, values in param.get("when", {}).items())


def branching_param():
    """The categorical param that others depend on (the optimizer's type)."""
    names = {name for p in SPACE for name in p.get("when", {})}
    return next(p for p in SPACE if p["name"] in names)


def full_params(fixed, pick):
    """Values for every param that applies given `fixed` (which wins), others from pick(param)."""
    chosen = {}
    for p in SPACE:
        if applies(p, chosen):
            chosen[p["name"]] = fixed[p["name"]] if p["name"] in fixed else pick(p)
    return chosen


class DriverTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kiln_optuna_test_")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    # --- helpers

    def storage(self, name):
        return f"sqlite:///{self.dir}/{name}.db"

    def study_command(self, name, *options, program=None):
        return [DRIVER, "study", "--study", name, "--monitor", MONITOR, "--direction", DIRECTION,
                "--out", self.dir, "--no-report", *options, "--", *(program or PROGRAM)]

    def run_driver(self, command, timeout=120):
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        self.assertEqual(result.returncode, 0, f"{shlex.join(command)}\n{result.stdout}{result.stderr}")
        return result

    def create(self, name, enqueued=()):
        study = optuna.create_study(study_name=name, storage=self.storage(name), direction=DIRECTION)
        for params in enqueued:
            study.enqueue_trial(params)

    def load(self, name):
        return optuna.load_study(study_name=name, storage=self.storage(name))

    def write_script(self, file_name, text):
        path = os.path.join(self.dir, file_name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
        return path

    def assert_none_running(self, study):
        self.assertFalse([t.number for t in study.trials if t.state == optuna.trial.TrialState.RUNNING])

    # --- the tests

    def test_parameters_arrive(self):
        """Each suggested value reaches the program: its effective configuration holds it
        exactly (floats through repr), and only the chosen branch's params are suggested."""
        branch = branching_param()
        choices = branch["distribution"]["attributes"]["choices"]
        # One trial per branch for certain; the other two as the random sampler draws them.
        self.create("params", [{branch["name"]: choice} for choice in choices[:2]])
        self.run_driver(self.study_command("params", "--trials", "4", "--epochs", "2", "--sampler", "random",
                                           "--seed", "1", "--pruner", "none"))
        study = self.load("params")
        self.assertEqual(len(study.trials), 4)
        seen_branches = set()
        for trial in study.trials:
            self.assertEqual(trial.state, optuna.trial.TrialState.COMPLETE, trial.user_attrs.get("reason"))
            config = trial.user_attrs["config"]
            self.assertEqual(config["fit.epochs"], 2)
            for name, value in trial.params.items():
                self.assertIn(name, config)
                self.assertEqual(config[name], value, name)
                self.assertIs(type(config[name]), type(value), name)
            expected = [p["name"] for p in SPACE if applies(p, trial.params)]
            self.assertEqual(sorted(trial.params), sorted(expected))
            seen_branches.add(trial.params[branch["name"]])
        self.assertGreaterEqual(len(seen_branches), min(2, len(choices)))

    def test_bad_configuration_is_pruned(self):
        """Two good trials complete; then a learning rate of 1e-7 is pruned after its first epoch."""
        epochs = 200

        def pick(param):
            # Ints (the batch size) at their low: the most steps per epoch, so that the fit is
            # still running when the driver's prune request comes (it reads the log every 0.1 s).
            return edge_values(param)[0] if param["distribution"]["name"] == "IntDistribution" else middle_value(param)

        good = full_params({"optimizer.type": "adamw"}, pick)
        bad = full_params(BAD_PARAMS, pick)
        self.create("prune", [good, good, bad])
        self.run_driver(self.study_command("prune", "--trials", "3", "--epochs", str(epochs), "--pruner", "median",
                                           "--startup-trials", "2", "--warmup-epochs", "0"))
        trials = self.load("prune").trials
        self.assertEqual([t.state.name for t in trials], ["COMPLETE", "COMPLETE", "PRUNED"])
        pruned = trials[2]
        self.assertEqual({k: pruned.params[k] for k in BAD_PARAMS}, BAD_PARAMS)
        self.assertEqual(pruned.user_attrs["exit_status"], 75)
        records, epoch_lines = epoch_records(pruned.user_attrs["log"])
        self.assertEqual(records[-1], {"end": "pruned"})
        self.assertLess(len(epoch_lines), epochs)
        self.assertEqual(sorted(pruned.intermediate_values), [r["epoch"] for r in epoch_lines])

    def test_crash_becomes_fail(self):
        """A trial whose program exits with an error, and one killed by SIGSEGV, are FAIL with
        their stderr kept, and the study still reaches its trial count."""
        program = shlex.join(PROGRAM)
        wrapper = self.write_script("crashing.sh", f"""#!/bin/sh
# The study's 2nd trial reads a data file that does not exist; the 3rd dies by SIGSEGV.
case " $* " in *" --print-search-space "*) exec {program} "$@" ;; esac
count={shlex.quote(self.dir)}/runs
n=$(( $(cat "$count" 2>/dev/null || echo 0) + 1 )); echo $n > "$count"
case $n in
  2) exec {program} "$@" --set data.path=/nonexistent.csv ;;
  3) echo "crashing.sh: about to die by SIGSEGV" >&2; kill -SEGV $$ ;;
esac
exec {program} "$@"
""")
        result = self.run_driver(self.study_command("crash", "--trials", "4", "--epochs", "2", "--sampler", "random",
                                                    "--pruner", "none", program=[wrapper]))
        trials = self.load("crash").trials
        self.assertEqual([t.state.name for t in trials], ["COMPLETE", "FAIL", "FAIL", "COMPLETE"], result.stdout)
        exited, killed = trials[1].user_attrs, trials[2].user_attrs
        self.assertEqual(exited["exit_status"], 2)
        self.assertIn("/nonexistent.csv", exited["stderr_tail"])
        self.assertEqual(exited["reason"], "exited with status 2")
        self.assertEqual(killed["exit_status"], "SIGSEGV")
        self.assertIn("about to die by SIGSEGV", killed["stderr_tail"])
        self.assertEqual(killed["reason"], "exited with signal SIGSEGV")

    def test_sigint_then_continue(self):
        """SIGINT to the driver while a trial runs: the trial is FAIL ("interrupted"), none is
        left RUNNING, the driver exits 130, and the same command completes the study."""
        command = self.study_command("sigint", "--trials", "2", "--epochs", "150", "--sampler", "random",
                                     "--pruner", "none")
        driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        log = os.path.join(self.dir, "sigint", "trial_0000", "trial.jsonl")
        deadline = time.monotonic() + 60
        while not (os.path.exists(log) and os.path.getsize(log) > 0):  # the fit has begun
            self.assertIsNone(driver.poll(), "the driver ended before its first trial began")
            self.assertLess(time.monotonic(), deadline, "no trial began within 60 s")
            time.sleep(0.02)
        driver.send_signal(signal.SIGINT)
        out, err = driver.communicate(timeout=90)
        self.assertEqual(driver.returncode, 130, out + err)
        self.assertIn("run the same command again", err)
        study = self.load("sigint")
        self.assert_none_running(study)
        self.assertEqual(study.trials[0].state, optuna.trial.TrialState.FAIL)
        self.assertEqual(study.trials[0].user_attrs["reason"], "interrupted")
        self.assertLess(study.trials[0].user_attrs["epochs"], 150)  # the driver passed SIGINT on

        self.run_driver(command)
        study = self.load("sigint")
        self.assert_none_running(study)
        self.assertEqual(len(study.trials), 2)
        self.assertEqual(study.trials[-1].state, optuna.trial.TrialState.COMPLETE)

    def test_replay_repeats_the_best_trial(self):
        """replay --trial best writes a configuration with which the program reaches the same
        final value as the trial did."""
        self.run_driver(self.study_command("replay", "--trials", "2", "--epochs", "3", "--sampler", "random",
                                           "--pruner", "none"))
        study = self.load("replay")
        config = os.path.join(self.dir, "best.json")
        result = self.run_driver([DRIVER, "replay", "--study", "replay", "--storage", self.storage("replay"),
                                  "--trial", "best", "--out", config])
        command = shlex.split(result.stdout.strip().splitlines()[-1])
        self.assertEqual(command[-2:], ["--config", config])
        _, trial_epochs = epoch_records(study.best_trial.user_attrs["log"])
        self.assertEqual(trial_epochs[-1]["metrics"][MONITOR], study.best_value)

        replay_log = os.path.join(self.dir, "replay.jsonl")
        subprocess.run(command, env=dict(os.environ, KILN_TRIAL_LOG=replay_log), capture_output=True, check=True)
        _, replay_epochs = epoch_records(replay_log)
        self.assertEqual(len(replay_epochs), len(trial_epochs))
        self.assertEqual(replay_epochs[-1]["metrics"][MONITOR], study.best_value)

    def test_report(self):
        """The report writes its PNG plots and report.html, which embeds them."""
        branch = branching_param()
        fixed = {branch["name"]: branch["distribution"]["attributes"]["choices"][0]}
        # Three trials of one branch whose params all vary: every plot has something to show.
        enqueued = [full_params(fixed, lambda p: edge_values(p)[0]), full_params(fixed, lambda p: edge_values(p)[1]),
                    full_params(fixed, lambda p: edge_values(p)[0] if p.get("when") else edge_values(p)[1])]
        self.create("report", enqueued)
        self.run_driver(self.study_command("report", "--trials", "3", "--epochs", "2", "--pruner", "none"))
        out = os.path.join(self.dir, "report-out")
        self.run_driver([DRIVER, "report", "--study", "report", "--storage", self.storage("report"), "--out", out])
        pngs = sorted(name for name in os.listdir(out) if name.endswith(".png"))
        for expected in ("optimization_history.png", "param_importances.png", "parallel_coordinate.png",
                         "intermediate_values.png"):
            self.assertIn(expected, pngs)
        for name in pngs:
            with open(os.path.join(out, name), "rb") as f:
                data = f.read()
            self.assertTrue(data.startswith(PNG_SIGNATURE), name)
            self.assertGreater(len(data), 10000, name)
        with open(os.path.join(out, "report.html")) as f:
            page = f.read()
        self.assertEqual(page.count("data:image/png;base64,"), len(pngs))
        self.assertIn(f"Best trial: {self.load('report').best_trial.number}", page)

    def test_parallel_workers_share_one_study(self):
        """Two workers on one SQLite study run exactly --trials trials between them, and never
        the same params."""
        command = self.study_command("parallel", "--trials", "6", "--epochs", "2", "--sampler", "random",
                                     "--seed", "3", "--pruner", "none")
        at = command.index("--")
        workers = [subprocess.Popen(command[:at] + ["--worker", str(k)] + command[at:], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for k in range(2)]
        for worker in workers:
            out, err = worker.communicate(timeout=120)
            self.assertEqual(worker.returncode, 0, out + err)
        trials = self.load("parallel").trials
        self.assertEqual(len(trials), 6)
        self.assertEqual({t.state.name for t in trials}, {"COMPLETE"})
        self.assertEqual({t.user_attrs["worker"] for t in trials}, {0, 1})
        self.assertEqual(len({json.dumps(t.params, sort_keys=True) for t in trials}), 6)

    def test_errors_are_one_line(self):
        """Usage problems end with status 2 and one line on stderr, not a traceback."""
        missing = os.path.join(self.dir, "missing")
        for command in (
                [DRIVER, "space", "--", missing],
                [DRIVER, "space", "--", os.path.join(ROOT, "README.md")],
                self.study_command("x", "--trials", "1", "--storage", "nosuch://x"),
                self.study_command("x", "--trials", "1", "--sampler", "grid"),  # a continuous, conditional space
                [DRIVER, "report", "--study", "x", "--storage", f"sqlite:///{missing}.db", "--out", self.dir],
                [DRIVER, "replay", "--study", "nosuch", "--storage", self.storage("x"), "--out", missing]):
            result = subprocess.run(command, capture_output=True, text=True, timeout=60)
            self.assertEqual(result.returncode, 2, shlex.join(command))
            self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
            self.assertTrue(result.stderr.startswith("kiln_optuna: "), result.stderr)

    def test_nan_becomes_fail(self):
        """A monitored value of null (NaN) fails the trial at once, with the epoch in its reason.

        The program itself does not produce NaN here: a wrapper passes its log through and
        writes the monitor at epoch 2 as null, as the program writes a NaN. The driver's
        stop request reaches the program through the wrapper."""
        wrapper = self.write_script("nan_at_epoch_2.py", f"""#!/usr/bin/python3
import json, os, signal, subprocess, sys, time
program = {PROGRAM!r}
if "--print-search-space" in sys.argv:
    os.execv(program[0], program + sys.argv[1:])
log = os.environ["KILN_TRIAL_LOG"]
child = subprocess.Popen(program + sys.argv[1:], env=dict(os.environ, KILN_TRIAL_LOG=log + ".program"))
for s in (signal.SIGUSR1, signal.SIGINT, signal.SIGTERM):
    signal.signal(s, lambda signum, frame: child.send_signal(signum))
copied = 0
def copy():
    global copied
    if not os.path.exists(log + ".program"):
        return
    with open(log + ".program") as f:
        lines = f.read().splitlines(keepends=True)
    with open(log, "a") as out:
        for line in lines[copied:]:
            if not line.endswith("\\n"):
                break
            record = json.loads(line)
            if record.get("epoch") == 2:
                record["metrics"][{MONITOR!r}] = None
            out.write(json.dumps(record) + "\\n")
            copied += 1
while child.poll() is None:
    copy()
    time.sleep(0.02)
copy()
sys.exit(child.returncode if child.returncode >= 0 else 128 - child.returncode)
""")
        self.run_driver(self.study_command("nan", "--trials", "1", "--epochs", "30", "--pruner", "none",
                                           program=[wrapper]))
        trial = self.load("nan").trials[0]
        self.assertEqual(trial.state, optuna.trial.TrialState.FAIL)
        self.assertEqual(trial.user_attrs["reason"], f"{MONITOR} was NaN at epoch 2")
        self.assertEqual(sorted(trial.intermediate_values), [1])


def main():
    program, program_args, rest = None, [], [sys.argv[0]]
    words = iter(sys.argv[1:])
    for word in words:
        name, equals, value = word.partition("=")
        if name in ("--program", "--program-arg"):
            value = value if equals else next(words, None)
            if value is None:
                sys.exit(f"{name} needs a value")
            if name == "--program":
                program = value
            else:
                program_args.append(value)
        else:
            rest.append(word)  # for unittest: -v, test names
    if program is None:
        sys.exit(__doc__)
    PROGRAM.extend([os.path.abspath(program) if os.sep in program else program, *program_args])
    SPACE.extend(read_space())
    unittest.main(argv=rest)


if __name__ == "__main__":
    main()
