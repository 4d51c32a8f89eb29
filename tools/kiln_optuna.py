#!/usr/bin/python3
"""Runs an Optuna study over a kiln program, one run of the program per trial.

    kiln_optuna.py study  --study NAME --monitor val/auroc --direction maximize --trials 30 \\
                          [options] -- PROG [ARGS...]
    kiln_optuna.py report --study NAME [--storage URL] --out DIR
    kiln_optuna.py replay --study NAME [--storage URL] [--trial N|best] --out config.json
    kiln_optuna.py space  -- PROG [ARGS...]

The program declares its search space (PROG --print-search-space prints it as JSON), takes a
trial's values as --set NAME=VALUE options, and appends its configuration and each epoch's
metrics to the file that the environment variable KILN_TRIAL_LOG names. The driver reports the
epochs to Optuna as they come and asks the program to stop (SIGUSR1) when the pruner says so.
tools/README.md describes the protocol, the storages, and workers on several machines.

Runs under Debian's /usr/bin/python3, which sees python3-optuna (3.1), python3-matplotlib,
python3-sklearn (parameter importances) and python3-psycopg2 (PostgreSQL storages).
"""
import argparse
import base64
import contextlib
import dataclasses
import decimal
import fcntl
import hashlib
import html
import json
import math
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from typing import Any, Dict, List, Optional

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

TOOL = "kiln_optuna"  # how messages begin

# The protocol's constants (include/kiln/tune/trial_report.hpp writes the program's side).
SPACE_OPTION = "--print-search-space"
SPACE_VERSION = 1
LOG_VARIABLE = "KILN_TRIAL_LOG"
PRUNED_STATUS = 75  # EX_TEMPFAIL: what the program exits with after a prune request

POLL_SECONDS = 0.1  # how often a running trial's log is read: a prune lands within an epoch or so
STDERR_TAIL_CHARS = 2000
DEFAULT_OUT = "studies"
# Beside a SQLite database or journal file; not ".lock", the name of JournalFileStorage's own lock.
LOCK_SUFFIX = ".kiln_optuna.lock"

# States that count towards --trials: WAITING trials (enqueued, not yet begun) do not.
COUNTED_STATES = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class DriverError(Exception):
    """A problem the user can fix: reported as one line on stderr, exit status 2.

    `details` (a program's stderr, say) is printed before that line when given."""

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.details = details


def note(message: str) -> None:
    print(f"{TOOL}: {message}", file=sys.stderr, flush=True)


def quiet_optuna() -> None:
    """The driver prints its own line per trial; Optuna's are noise next to them.

    The experimental features used here (JournalStorage, TPE's multivariate/group/constant_liar,
    fail_stale_trials, the matplotlib plots) are chosen deliberately, so their warnings go too."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # Heartbeats are recorded by this driver itself (Heartbeat below), which Optuna cannot see.
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")

    def one_line(message, category, filename, lineno, file=None, line=None):
        note(f"warning: {message}")

    warnings.showwarning = one_line


# ---------------------------------------------------------------------------------------------
# The program's command line


def with_options(command: List[str], options: List[str]) -> List[str]:
    """`command` with `options` added: at its end, or before a "--" after which the program
    takes every word as a positional argument."""
    if "--" in command[1:]:
        at = command.index("--", 1)
        return command[:at] + options + command[at:]
    return command + options


def without_config_options(command: List[str]) -> List[str]:
    """`command` less its --set and --config options, whose values a trial's effective
    configuration already holds."""
    kept, i = [command[0]], 1
    while i < len(command):
        word = command[i]
        if word == "--":
            kept += command[i:]
            break
        if word in ("--set", "--config"):
            i += 2
            continue
        if word.startswith("--set=") or word.startswith("--config="):
            i += 1
            continue
        kept.append(word)
        i += 1
    return kept


def check_program(command: List[str]) -> None:
    if not command:
        raise DriverError("no program given: name it after --, as in '... -- build/examples/tune_breast_cancer'")
    name = command[0]
    path = name if os.sep in name else shutil.which(name)
    if path is None or not os.path.exists(path):
        raise DriverError(f"program '{name}' does not exist")
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        raise DriverError(f"program '{name}' is not executable")


def set_text(value: Any) -> str:
    """A value as --set writes it: kiln parses the text by the option's type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same double
    return str(value)


def format_value(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def format_params(params: Dict[str, Any]) -> str:
    return ", ".join(f"{name}={format_value(value)}" for name, value in params.items()) or "(no parameters)"


# ---------------------------------------------------------------------------------------------
# The search space


def same_value(a: Any, b: Any) -> bool:
    """Equality as JSON means it: true is not 1."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


@dataclasses.dataclass(frozen=True)
class Param:
    name: str
    distribution: BaseDistribution
    when: Dict[str, List[Any]]  # an earlier param's name -> the values for which this one applies

    def applies(self, chosen: Dict[str, Any]) -> bool:
        """Whether a trial that suggested `chosen` so far suggests this param."""
        return all(
            name in chosen and any(same_value(chosen[name], allowed) for allowed in values)
            for name, values in self.when.items()
        )


def find_space_object(stdout: str) -> Optional[dict]:
    """The search space in a program's stdout: the last JSON object that begins at the start of
    a line and runs to the end of the output. Lines printed before it are ignored, and the object
    may span lines (pretty-printed)."""
    decoder = json.JSONDecoder()
    line_starts = [0] + [match.end() for match in re.finditer("\n", stdout)]
    for start in reversed(line_starts):
        if not stdout.startswith("{", start):
            continue
        try:
            obj, end = decoder.raw_decode(stdout, start)
        except json.JSONDecodeError:
            continue
        if stdout[end:].strip() == "" and isinstance(obj, dict) and "kiln_search_space" in obj:
            return obj
    return None


def parse_space(obj: dict) -> List[Param]:
    version = obj.get("kiln_search_space")
    if version != SPACE_VERSION:
        raise DriverError(f"the search space is of protocol version {version!r}; "
                          f"this driver reads version {SPACE_VERSION}")
    entries = obj.get("params")
    if not isinstance(entries, list):
        raise DriverError('the search space has no "params" list')
    space: List[Param] = []
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise DriverError(f"the search space's param {index} has no name")
        if any(p.name == name for p in space):
            raise DriverError(f"the search space lists '{name}' twice")
        try:
            distribution = optuna.distributions.json_to_distribution(json.dumps(entry.get("distribution")))
        except Exception as error:  # Optuna raises ValueError, KeyError or TypeError here
            raise DriverError(f"the search space's '{name}' has no distribution Optuna reads: {error!r}")
        when = entry.get("when", {})
        if not isinstance(when, dict):
            raise DriverError(f"the search space's '{name}' has a \"when\" that is not an object")
        for condition, values in when.items():
            earlier = next((p for p in space if p.name == condition), None)
            if earlier is None:
                raise DriverError(f"'{name}' depends on '{condition}', which is not a param listed before it")
            if not isinstance(values, list) or not values:
                raise DriverError(f"'{name}' depends on '{condition}' with no list of values")
            for value in values:
                if not earlier.distribution._contains(earlier.distribution.to_internal_repr(value)):
                    raise DriverError(f"'{name}' depends on '{condition}' being {value!r}, which it never is")
        space.append(Param(name, distribution, when))
    return space


def read_search_space(command: List[str]) -> List[Param]:
    argv = with_options(command, [SPACE_OPTION])
    try:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace")
    except OSError as error:
        raise DriverError(f"cannot run {command[0]}: {error.strerror}")
    if result.returncode != 0:
        raise DriverError(f"{shlex.join(argv)} exited with {describe_status(result.returncode)}", details=result.stderr)
    obj = find_space_object(result.stdout)
    if obj is None:
        raise DriverError(f"{shlex.join(argv)} printed no search space (a JSON object with \"kiln_search_space\", "
                          "last on its stdout)")
    return parse_space(obj)


def space_json(space: List[Param]) -> str:
    """The space in a canonical form, to tell whether a program's space changed."""
    return json.dumps([{"name": p.name, "distribution": optuna.distributions.distribution_to_json(p.distribution),
                        "when": p.when} for p in space], sort_keys=True)


def suggest(trial: optuna.Trial, space: List[Param]) -> Dict[str, Any]:
    """Suggests the params that apply to this trial, in the space's order."""
    chosen: Dict[str, Any] = {}
    for param in space:
        if not param.applies(chosen):
            continue
        d = param.distribution
        if isinstance(d, CategoricalDistribution):
            chosen[param.name] = trial.suggest_categorical(param.name, d.choices)
        elif isinstance(d, IntDistribution):
            chosen[param.name] = trial.suggest_int(param.name, d.low, d.high, step=d.step, log=d.log)
        elif isinstance(d, FloatDistribution):
            chosen[param.name] = trial.suggest_float(param.name, d.low, d.high, step=d.step, log=d.log)
        else:
            raise DriverError(f"'{param.name}' has a distribution this driver cannot suggest: {d}")
    return chosen


def grid_of(space: List[Param]) -> Dict[str, list]:
    """The grid sampler's points along each param, or an error naming the param that has none."""
    grid: Dict[str, list] = {}
    for param in space:
        d = param.distribution
        if param.when:
            raise DriverError(f"--sampler grid needs a space without conditions, and '{param.name}' applies only "
                              f"when {describe_when(param.when)}; use tpe or random, or make the program's space "
                              "unconditional")
        if isinstance(d, CategoricalDistribution):
            grid[param.name] = list(d.choices)
        elif isinstance(d, IntDistribution):
            grid[param.name] = list(range(d.low, d.high + 1, d.step))
        elif isinstance(d, FloatDistribution):
            if d.step is None:
                raise DriverError(f"--sampler grid needs a step for every float param, and '{param.name}' is "
                                  "continuous; give it a step in the program's space")
            # Decimal steps: 0.1 + 2 * 0.1 is 0.30000000000000004 in binary, 0.3 here.
            low, step = decimal.Decimal(repr(d.low)), decimal.Decimal(repr(d.step))
            count = int(round((d.high - d.low) / d.step)) + 1
            grid[param.name] = [float(low + k * step) for k in range(count)]
        else:
            raise DriverError(f"--sampler grid cannot enumerate '{param.name}': {d}")
    return grid


def describe_when(when: Dict[str, List[Any]]) -> str:
    return " and ".join(f"{name} in {values}" for name, values in when.items())


# ---------------------------------------------------------------------------------------------
# Storages and the locks that make --trials exact with parallel workers


class FileLock:
    """An fcntl lock on a file beside a SQLite database or journal file: it serializes the
    workers on one machine (and on NFS with lockd), and is released when a worker dies."""

    def __init__(self, path: str):
        self.path = path

    @contextlib.contextmanager
    def hold(self, name: str):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the file releases the lock


class PostgresLock:
    """A session-level advisory lock of the study's PostgreSQL server, one per name. It lives on
    its own connection, so a worker that dies (or loses its connection) releases it."""

    def __init__(self, url: str):
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        self._sqlalchemy = sqlalchemy
        self._engine = sqlalchemy.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")

    @staticmethod
    def key(name: str) -> int:
        digest = hashlib.sha256(f"kiln_optuna:{name}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)  # pg_advisory_lock takes a bigint

    @contextlib.contextmanager
    def hold(self, name: str):
        text, key = self._sqlalchemy.text, self.key(name)
        with self._engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})


class NoLock:
    @contextlib.contextmanager
    def hold(self, name: str):
        yield


class StudyStorage:
    """The --storage option: where the study lives and how its workers take turns.

        (none)             sqlite:///OUT/STUDY.db
        sqlite:///PATH     a SQLite file (one machine)
        journal:PATH       Optuna's JournalStorage over a JournalFileStorage (one machine)
        postgresql://...   a PostgreSQL database (any number of machines)
        any other SQLAlchemy URL (mysql://...): no lock, so parallel workers may run a few
                           trials more than --trials asks
    """

    CREATE_LOCK = "create"  # taken while creating tables and studies

    def __init__(self, option: Optional[str], default_path: str, must_exist: bool, heartbeat: int = 0):
        self.option = option if option is not None else "sqlite:///" + os.path.abspath(default_path)
        self.heartbeat = heartbeat
        self.journal_path: Optional[str] = None
        self.url: Optional[str] = None
        if self.option.startswith("journal:"):
            self.journal_path = self.option[len("journal:"):]
            if not self.journal_path:
                raise DriverError("--storage journal: needs a file, as in journal:studies/bc.log")
            self._prepare_file(self.journal_path, must_exist)
            self.lock = FileLock(self.journal_path + LOCK_SUFFIX)
            self.shown = self.option
        elif "://" in self.option:
            self._init_url(must_exist)
        else:
            raise DriverError(f"--storage '{self.option}' is neither an SQLAlchemy URL (sqlite:///studies/bc.db, "
                              "postgresql://user:password@host/db) nor journal:PATH")
        self.backend = self._open()
        if isinstance(self.lock, NoLock):
            note(f"warning: no lock for {self.shown.split(':')[0]} storages: parallel workers may run more trials "
                 "than --trials")

    def _init_url(self, must_exist: bool):
        import sqlalchemy.engine
        import sqlalchemy.exc

        try:
            url = sqlalchemy.engine.make_url(self.option)
        except sqlalchemy.exc.ArgumentError:
            raise DriverError(f"--storage '{self.option}' is not a URL SQLAlchemy reads")
        self.url = self.option
        self.shown = url.render_as_string(hide_password=True)
        backend = url.get_backend_name()
        if backend == "sqlite":
            if url.database in (None, "", ":memory:"):
                raise DriverError("--storage needs a SQLite file, not an in-memory database: "
                                  "the study must outlive the driver")
            self._prepare_file(url.database, must_exist)
            self.lock = FileLock(url.database + LOCK_SUFFIX)
        elif backend == "postgresql":
            self.lock = PostgresLock(self.option)
        else:
            self.lock = NoLock()

    @staticmethod
    def _prepare_file(path: str, must_exist: bool):
        """A study to read must exist (opening a missing file would create an empty one); one to
        run needs its directory."""
        if must_exist:
            if not os.path.exists(path):
                raise DriverError(f"no study database at {path}")
        else:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def _open(self) -> optuna.storages.BaseStorage:
        try:
            with self.lock.hold(self.CREATE_LOCK):  # two workers creating the tables at once can collide
                if self.journal_path is not None:
                    return optuna.storages.JournalStorage(optuna.storages.JournalFileStorage(self.journal_path))
                return optuna.storages.RDBStorage(self.url, heartbeat_interval=self.heartbeat or None)
        except DriverError:
            raise
        except Exception as error:  # SQLAlchemy's, the database driver's, or an OSError
            raise DriverError(f"cannot open storage {self.shown}: {first_line(error)}")

    def study_names(self) -> List[str]:
        return [s.study_name for s in optuna.get_all_study_summaries(self.backend, include_best_trial=False)]

    def load(self, name: str, **samplers) -> optuna.Study:
        try:
            return optuna.load_study(study_name=name, storage=self.backend, **samplers)
        except KeyError:
            names = self.study_names()
            known = f"; it holds {', '.join(names)}" if names else "; it holds no study"
            raise DriverError(f"no study '{name}' in {self.shown}{known}")

    def default_for_commands(self) -> str:
        """The --storage option that names this storage from another directory."""
        if self.journal_path is not None:
            return "journal:" + os.path.abspath(self.journal_path)
        return self.shown if "***" not in self.shown else "URL"


def first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


class Heartbeat:
    """Records a RUNNING trial's heartbeat in an RDB storage while its program runs, so that a
    worker that dies (SIGKILL, a lost machine) leaves a trial that the other workers can fail
    (fail_stale_trials) instead of one that stays RUNNING for ever."""

    def __init__(self, storage: StudyStorage, trial: optuna.Trial):
        self._interval = storage.heartbeat if isinstance(storage.backend, optuna.storages.RDBStorage) else 0
        self._backend = storage.backend
        self._trial_id = trial._trial_id  # the storage's id; Optuna offers no public accessor
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def __enter__(self):
        if self._interval:
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()

    def _beat(self):
        warned = False
        while True:
            try:
                self._backend.record_heartbeat(self._trial_id)
            except Exception as error:  # a database that is briefly away: keep trying
                if not warned:
                    note(f"warning: cannot record the trial's heartbeat: {first_line(error)}")
                    warned = True
            if self._stop.wait(self._interval):
                return


def stale_trial_ids(study: optuna.Study, backend: optuna.storages.RDBStorage, grace: float) -> List[int]:
    """The storage ids of the study's RUNNING trials whose last heartbeat is older than `grace`
    seconds, both times taken from the database's clock.

    Written here rather than taken from optuna.storages.fail_stale_trials: in Optuna 3.1 that
    compares `(now - heartbeat).seconds`, and a heartbeat recorded a moment after the checking
    transaction began (PostgreSQL's now() is the transaction's start) gives a negative interval
    whose .seconds is 86,399: a live worker's trial was failed."""
    import sqlalchemy
    from optuna.storages._rdb import models

    study_id = study._study_id  # the storage's id; Optuna offers no public accessor
    session = backend.scoped_session()
    try:
        now = session.execute(sqlalchemy.func.now()).scalar().replace(tzinfo=None)
        running = (session.query(models.TrialModel)
                   .filter(models.TrialModel.state == TrialState.RUNNING)
                   .filter(models.TrialModel.study_id == study_id)
                   .all())
        stale = [t.trial_id for t in running
                 if t.heartbeats and (now - t.heartbeats[0].heartbeat).total_seconds() > grace]
        session.commit()
    finally:
        session.close()
    return stale


def fail_stale_trials(study: optuna.Study, storage: StudyStorage) -> None:
    """Fails the RUNNING trials whose worker stopped beating, and says which."""
    if not storage.heartbeat or not isinstance(storage.backend, optuna.storages.RDBStorage):
        return
    grace = 2 * storage.heartbeat
    for trial_id in stale_trial_ids(study, storage.backend, grace):
        try:
            study._storage.set_trial_state_values(trial_id, TrialState.FAIL)  # as Optuna's own does
        except RuntimeError:  # it finished, or another worker failed it first
            continue
        number = study._storage.get_trial(trial_id).number
        note(f"trial {number}: its worker sent no heartbeat for {grace} s; marked FAIL")


# ---------------------------------------------------------------------------------------------
# One trial: the program's run


@dataclasses.dataclass
class Outcome:
    state: TrialState
    value: Optional[float] = None
    reason: Optional[str] = None  # why a trial failed, or at which epoch it was pruned


@dataclasses.dataclass
class Settings:
    """The study command's options that shape each trial."""

    monitor: str
    maximize: bool
    value: str  # "last" or "best"
    grace: float
    trial_timeout: Optional[float]
    prune: bool


class Interrupts:
    """SIGINT and SIGTERM to the driver. The first is passed on to the running program (which
    runs in its own session, so a terminal's Ctrl-C reaches the driver alone) and ends the study
    after this trial; a second one kills the program at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received: List[int] = []
        self.process: Optional[subprocess.Popen] = None
        self._previous = {}

    def install(self):
        self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}

    def restore(self):
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    def _handle(self, signum, frame):
        self.received.append(signum)
        process = self.process
        if process is None or process.returncode is not None:
            return
        if len(self.received) == 1:
            send(process, signum)
        else:
            kill(process)

    @property
    def exit_status(self) -> int:
        return 128 + self.received[0]


def send(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signum)


def kill(process: subprocess.Popen) -> None:
    """SIGKILL to the program and whatever it started (its session's process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    send(process, signal.SIGKILL)


def describe_status(returncode: int) -> str:
    """How a process ended, for messages: "status 2", "signal SIGSEGV"."""
    if returncode >= 0:
        return f"status {returncode}"
    name = signal_name(returncode)
    return name if name.startswith("signal") else f"signal {name}"


def signal_name(returncode: int) -> str:
    """The signal that ended a process (Popen's returncode < 0): "SIGSEGV", or "signal 40"."""
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


class LogReader:
    """The whole lines that the program has appended to its trial log so far."""

    def __init__(self, path: str):
        self.path = path
        self._offset = 0
        self._partial = b""
        self.bad_lines = 0

    def read(self) -> List[dict]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()  # a line the program is still writing
        records = []
        for line in lines:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict):
                records.append(record)
            else:
                self.bad_lines += 1
        return records


def monitored_value(metrics: Any, monitor: str, epoch: Any):
    """The monitor's value in an epoch's metrics, or the reason the trial fails."""
    if not isinstance(metrics, dict):
        return None, f"epoch {epoch} has no metrics object"
    if monitor not in metrics:
        present = ", ".join(metrics) or "none"
        return None, f"{monitor} is not among the metrics of epoch {epoch} (present: {present})"
    value = metrics[monitor]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, f"{monitor} was NaN at epoch {epoch}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, f"{monitor} was {value!r} at epoch {epoch}, not a number"
    if math.isinf(value):
        return None, f"{monitor} was {value} at epoch {epoch}"
    return float(value), None


class ProgramRun:
    """Runs the program for one trial, reports its epochs to Optuna, and stops it (SIGUSR1) when
    the pruner says so, when the monitor is bad or missing, or after --trial-timeout."""

    def __init__(self, trial: optuna.Trial, argv: List[str], trial_dir: str, settings: Settings,
                 interrupts: Interrupts):
        self.trial = trial
        self.argv = argv
        self.trial_dir = trial_dir
        self.settings = settings
        self.interrupts = interrupts
        self.log_path = os.path.join(trial_dir, "trial.jsonl")
        self.config: Optional[dict] = None
        self.values: List[float] = []  # the monitor's value after each epoch, in order
        self.epochs = 0
        self.returncode: Optional[int] = None
        self._last_reported = 0
        self._stop_reason: Optional[str] = None  # why the driver asked the program to stop
        self._stop_sent: Optional[float] = None
        self._pruned_at: Optional[int] = None
        self._fit_ended = False  # the log's last fit has written its "end" line
        self._killed = False

    def run(self) -> Outcome:
        env = dict(os.environ, **{LOG_VARIABLE: self.log_path})
        with open(os.path.join(self.trial_dir, "stdout.txt"), "wb") as out, \
                open(os.path.join(self.trial_dir, "stderr.txt"), "wb") as err:
            try:
                process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                           start_new_session=True)
            except OSError as error:
                return Outcome(TrialState.FAIL, reason=f"could not start the program: {error.strerror}")
        self.interrupts.process = process
        try:
            self._follow(process)
        finally:
            self.interrupts.process = None
        return self._outcome()

    def _follow(self, process: subprocess.Popen):
        reader = LogReader(self.log_path)
        started = time.monotonic()
        while True:
            # Polled before reading, so that the last read after the exit sees every line.
            returncode = process.poll()
            for record in reader.read():
                self._take(record, running=returncode is None)
            if returncode is not None:
                self.returncode = returncode
                break
            now = time.monotonic()
            if self.interrupts.received and self._stop_reason != "interrupted":
                self._stop_reason, self._stop_sent = "interrupted", now  # the handler passed the signal on
            timeout = self.settings.trial_timeout
            if timeout is not None and self._stop_reason is None and now - started > timeout:
                self._stop_reason = f"ran past --trial-timeout ({timeout:g} s)"
            if self._stop_reason is not None and self._stop_sent is None:
                # No SIGUSR1 once the fit has ended: the program need not handle it any more,
                # and it is about to exit anyway. The grace period runs either way.
                if not self._fit_ended:
                    send(process, signal.SIGUSR1)
                self._stop_sent = now
            if self._stop_sent is not None and not self._killed and now - self._stop_sent > self.settings.grace:
                kill(process)
                self._killed = True
            time.sleep(POLL_SECONDS)
        if reader.bad_lines:
            note(f"warning: trial {self.trial.number}: {reader.bad_lines} line(s) of {self.log_path} "
                 "are not JSON objects")

    def _take(self, record: dict, running: bool):
        if "config" in record:
            self.config = record["config"] if isinstance(record["config"], dict) else None
            self._fit_ended = False
        elif "end" in record:
            self._fit_ended = True
        elif "epoch" in record:
            self.epochs += 1
            if self._stop_reason not in (None, "pruned"):
                return  # the trial fails whatever comes now
            epoch = record["epoch"]
            value, problem = monitored_value(record.get("metrics"), self.settings.monitor, epoch)
            if problem is not None:
                self._stop_reason = problem
                return
            self.values.append(value)
            # Steps are the epochs done; a repeated or smaller number (a second fit in one
            # program) counts for the value but is not reported twice.
            if isinstance(epoch, int) and epoch > self._last_reported:
                try:
                    self.trial.report(value, epoch)
                except RuntimeError as error:  # another worker failed this trial (no heartbeat in time)
                    self._stop_reason = f"the study no longer takes its results: {first_line(error)}"
                    return
                self._last_reported = epoch
                if running and self._stop_reason is None and self.settings.prune and self.trial.should_prune():
                    self._stop_reason, self._pruned_at = "pruned", epoch

    def _outcome(self) -> Outcome:
        status, reason = self.returncode, self._stop_reason
        if self.interrupts.received:
            return Outcome(TrialState.FAIL, reason="interrupted")
        if reason not in (None, "pruned"):
            if self._killed:
                reason += f"; killed when it had not stopped {self.settings.grace:g} s later"
            return Outcome(TrialState.FAIL, reason=reason)
        if self._killed:
            return Outcome(TrialState.FAIL, reason=f"did not stop within --grace ({self.settings.grace:g} s) "
                                                   "of the prune request; killed")
        # Death by SIGUSR1 itself: the request reached a program that no longer (or not yet)
        # handled it; the pruner's decision stands.
        if reason == "pruned" and status in (PRUNED_STATUS, -signal.SIGUSR1):
            return Outcome(TrialState.PRUNED, reason=f"pruned at epoch {self._pruned_at}")
        if status == 0:
            if not self.values:
                return Outcome(TrialState.FAIL, reason=f"exited with status 0 but reported no epoch to {self.log_path}")
            value = self.values[-1]
            if self.settings.value == "best":
                value = max(self.values) if self.settings.maximize else min(self.values)
            return Outcome(TrialState.COMPLETE, value=value)  # also when a prune request came too late
        if status == PRUNED_STATUS:
            return Outcome(TrialState.FAIL,
                           reason=f"exited with status {PRUNED_STATUS} (pruned) though no prune was requested")
        return Outcome(TrialState.FAIL, reason=f"exited with {describe_status(status)}")

    def exit_status(self):
        if self.returncode is None:
            return None
        return signal_name(self.returncode) if self.returncode < 0 else self.returncode

    def stderr_tail(self) -> str:
        with open(os.path.join(self.trial_dir, "stderr.txt"), "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4 * STDERR_TAIL_CHARS))
            return f.read().decode("utf-8", errors="replace")[-STDERR_TAIL_CHARS:]


# ---------------------------------------------------------------------------------------------
# The study command


def make_sampler(args, space: List[Param], seed: int) -> optuna.samplers.BaseSampler:
    conditional = [p.name for p in space if p.when]
    if args.sampler == "tpe":
        multivariate = args.multivariate or args.group
        if multivariate and not args.group and conditional:
            note("note: the space is conditional; --group lets multivariate TPE model each branch "
                 f"(without it, {', '.join(conditional)} are sampled independently)")
        return optuna.samplers.TPESampler(seed=seed, multivariate=multivariate, group=args.group,
                                          constant_liar=args.constant_liar, warn_independent_sampling=False)
    if args.sampler == "cmaes":
        others = [p.name for p in space if p.when or isinstance(p.distribution, CategoricalDistribution)]
        if others:
            note(f"note: CMA-ES models numeric params that every trial has; {', '.join(others)} are sampled at random")
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if args.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return GridSampler(grid_of(space), seed=seed)


class GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler, without its study.stop() once the grid is done: that works only
    inside study.optimize(), and the driver stops at --trials (capped at the grid's size)."""

    def after_trial(self, study, trial, state, values):
        pass


def make_pruner(args) -> optuna.pruners.BasePruner:
    if args.pruner == "median":
        # Steps are epochs done, from 1; Optuna skips steps below n_warmup_steps, so W + 1
        # keeps a trial from being pruned during its first W epochs.
        return optuna.pruners.MedianPruner(n_startup_trials=args.startup_trials, n_warmup_steps=args.warmup_epochs + 1)
    if args.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    if args.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=args.epochs or "auto")
    return optuna.pruners.NopPruner()


def sampler_seed(seed: Optional[int], worker: int, trials_before: int) -> int:
    """The seed of this worker's sampler. From --seed S it is derived from S, the worker index
    and the number of trials the study already holds: parallel workers never draw the same
    suggestions, nor does a second run that continues a study repeat the first one's draws,
    and the same command on the same study gives the same draws. Without --seed: from the OS."""
    if seed is None:
        return secrets.randbelow(2**31)
    digest = hashlib.sha256(f"{seed}/{worker}/{trials_before}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2**31


def counted_trials(study: optuna.Study) -> List[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=COUNTED_STATES)


def check_study_settings(study: optuna.Study, args, space: List[Param]) -> None:
    """A study keeps one monitor, direction and value rule: mixing them would compare unlike values."""
    direction = study.direction.name.lower()
    if direction != args.direction:
        raise DriverError(f"study '{args.study}' was created to {direction}; --direction {args.direction} was given")
    attrs = study.user_attrs
    for key, given in (("monitor", args.monitor), ("value", args.value)):
        if key in attrs and attrs[key] != given:
            raise DriverError(f"study '{args.study}' uses --{key} {attrs[key]}; --{key} {given} was given")
        if key not in attrs:
            study.set_user_attr(key, given)
    current = space_json(space)
    if "search_space" not in attrs:
        study.set_user_attr("search_space", current)
    elif attrs["search_space"] != current:
        note(f"warning: the program's search space differs from the one study '{args.study}' began with")
    if args.seed is not None:
        study.set_user_attr("seed", args.seed)


def fresh_directory(path: str) -> None:
    """Creates a trial's directory. One left by an earlier study of the same name (deleted and
    created again, so trial numbers start over) is moved aside, not mixed in."""
    if os.path.exists(path):
        n = 1
        while os.path.exists(f"{path}.earlier-{n}"):
            n += 1
        os.rename(path, f"{path}.earlier-{n}")
        note(f"moved an earlier {path} aside to {path}.earlier-{n}")
    os.makedirs(path)


def space_names(study: optuna.Study) -> List[str]:
    """The params of the program's search space, in its order, as the study recorded it."""
    try:
        return [p["name"] for p in json.loads(study.user_attrs["search_space"])]
    except (KeyError, ValueError, TypeError):
        return []


def in_space_order(study: optuna.Study, params: Dict[str, Any]) -> Dict[str, Any]:
    """A trial's params in the order of the program's search space (Optuna sorts them by name)."""
    order = space_names(study)
    return dict(sorted(params.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)))


def trial_line(number: int, state: TrialState, monitor: str, value: Optional[float], params: Dict[str, Any],
               seconds: float, reason: Optional[str]) -> str:
    shown = f"{monitor}={value:.6g}" if value is not None else "-"
    if reason:
        shown += f" ({reason})"
    return f"trial {number:<4} {state.name:<8} {shown}  {format_params(params)}  {seconds:.1f} s"


def command_study(args, program: List[str]) -> int:
    check_program(program)
    if args.trials < 1:
        raise DriverError("--trials must be at least 1")
    if args.sampler != "tpe" and (args.multivariate or args.group or args.constant_liar):
        raise DriverError("--multivariate, --group and --constant-liar are options of --sampler tpe")
    space = read_search_space(program)
    target = args.trials
    if args.sampler == "grid":
        points = math.prod(len(values) for values in grid_of(space).values())
        if points < target:
            note(f"the grid has {points} points: the study stops at {points} trials")
            target = points
    out = os.path.abspath(args.out)
    study_dir = os.path.join(out, args.study)
    storage = StudyStorage(args.storage, os.path.join(out, f"{args.study}.db"), must_exist=False,
                           heartbeat=args.heartbeat)
    with storage.lock.hold(StudyStorage.CREATE_LOCK):
        study = optuna.create_study(study_name=args.study, storage=storage.backend, direction=args.direction,
                                    load_if_exists=True)
        check_study_settings(study, args, space)
    seed = sampler_seed(args.seed, args.worker, len(counted_trials(study)))
    study = storage.load(args.study, sampler=make_sampler(args, space, seed), pruner=make_pruner(args))
    settings = Settings(monitor=args.monitor, maximize=args.direction == "maximize", value=args.value,
                        grace=args.grace, trial_timeout=args.trial_timeout, prune=args.pruner != "none")
    command = program if args.epochs is None else with_options(program, ["--set", f"fit.epochs={args.epochs}"])
    host = socket.gethostname()
    print(f"study '{args.study}' in {storage.shown}: {len(counted_trials(study))} of {target} trials so far; "
          f"worker {args.worker}, sampler {args.sampler} (seed {seed}), pruner {args.pruner}", flush=True)

    interrupts = Interrupts()
    interrupts.install()
    try:
        while not interrupts.received:
            # Counting and asking under one lock makes --trials exact across workers; suggesting
            # under it too lets each sampler see the params of every trial already running
            # (what --constant-liar and the grid sampler need).
            with storage.lock.hold(f"study:{args.study}"):
                fail_stale_trials(study, storage)
                if len(counted_trials(study)) >= target:
                    break
                trial = study.ask()
                params = suggest(trial, space)
            try:
                run_one_trial(study, trial, params, command, program, study_dir, settings, interrupts,
                              storage, host, args.worker, seed)
            except BaseException:  # a full disk, a lost database: leave no trial RUNNING
                with contextlib.suppress(Exception):
                    study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                raise
    finally:
        interrupts.restore()

    if interrupts.received:
        note("interrupted; to continue the study to its --trials, run the same command again:")
        print("  " + shlex.join([sys.argv[0], *sys.argv[1:]]), file=sys.stderr, flush=True)
        return interrupts.exit_status
    summarize(study, storage, args.study, host)
    if not args.no_report:
        report_dir = os.path.join(study_dir, "report")
        write_report(study, report_dir)
        print(f"report: {os.path.join(report_dir, 'report.html')}")
    return 0


def run_one_trial(study, trial, params, command, program, study_dir, settings, interrupts, storage, host,
                  worker, seed) -> None:
    trial_dir = os.path.join(study_dir, f"trial_{trial.number:04d}")
    fresh_directory(trial_dir)
    sets = [word for name, value in params.items() for word in ("--set", f"{name}={set_text(value)}")]
    argv = with_options(command, sets)
    run = ProgramRun(trial, argv, trial_dir, settings, interrupts)
    for key, value in (("command", argv), ("program", program), ("log", run.log_path), ("trial_dir", trial_dir),
                       ("host", host), ("worker", worker), ("sampler_seed", seed)):
        trial.set_user_attr(key, value)
    started = time.monotonic()
    if interrupts.received:  # between the ask and the start
        outcome = Outcome(TrialState.FAIL, reason="interrupted")
    else:
        with Heartbeat(storage, trial):
            outcome = run.run()
    seconds = time.monotonic() - started

    attrs = {"config": run.config, "exit_status": run.exit_status(), "epochs": run.epochs, "seconds": round(seconds, 3)}
    if outcome.state == TrialState.FAIL:
        attrs["reason"] = outcome.reason
        attrs["stderr_tail"] = run.stderr_tail() if os.path.exists(os.path.join(trial_dir, "stderr.txt")) else ""
    if run.config is not None:
        with open(os.path.join(trial_dir, "config.json"), "w") as f:
            json.dump(run.config, f, indent=2)
            f.write("\n")
    try:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        frozen = study.tell(trial, outcome.value, state=outcome.state)
    except (RuntimeError, ValueError) as error:
        # Another worker failed this trial: it sent no heartbeat in time (a suspended machine).
        note(f"trial {trial.number}: its result is lost: {first_line(error)}")
        return
    value = frozen.value if frozen.state in (TrialState.COMPLETE, TrialState.PRUNED) else None
    reason = outcome.reason
    if outcome.state == TrialState.FAIL and attrs["stderr_tail"].strip():
        reason += ": " + attrs["stderr_tail"].strip().splitlines()[-1]
    print(trial_line(trial.number, outcome.state, settings.monitor, value, params, seconds, reason), flush=True)


def summarize(study: optuna.Study, storage: StudyStorage, name: str, host: str) -> None:
    trials = study.get_trials(deepcopy=False)
    counts = {state: sum(t.state == state for t in trials) for state in COUNTED_STATES}
    print(f"study '{name}': " + ", ".join(f"{n} {state.name}" for state, n in counts.items() if n))
    if counts[TrialState.RUNNING]:
        print(f"  ({counts[TrialState.RUNNING]} still running in other workers)")
    if counts[TrialState.COMPLETE] == 0:
        print("no trial completed")
        return
    best = study.best_trial
    monitor = study.user_attrs.get("monitor", "value")
    print(f"best: trial {best.number}, {monitor}={best.value:.6g}, {format_params(in_space_order(study, best.params))}")
    config = os.path.join(best.user_attrs.get("trial_dir", "-"), "config.json")
    where = f"--storage {shlex.quote(storage.default_for_commands())}"
    if best.user_attrs.get("host") == host and "program" in best.user_attrs and os.path.exists(config):
        print(f"  its configuration: {config}")
        print(f"  to repeat it: {shlex.join(replay_command(best.user_attrs['program'], config))}")
    else:
        print(f"  its configuration: {sys.argv[0]} replay --study {shlex.quote(name)} {where} --out config.json")


# ---------------------------------------------------------------------------------------------
# The report


def write_report(study: optuna.Study, out_dir: str) -> List[str]:
    """PNG plots and report.html in out_dir. Returns the notes on plots that were left out."""
    os.makedirs(out_dir, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # matplotlib's, on degenerate axes (one trial, one value)
        return _write_report(study, out_dir)


def _write_report(study: optuna.Study, out_dir: str) -> List[str]:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt
    import numpy
    from matplotlib.colors import ListedColormap
    from matplotlib.ticker import MaxNLocator
    from optuna.visualization import matplotlib as plots

    monitor = study.user_attrs.get("monitor", "objective value")
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    figures: List[tuple] = []  # (file name, caption)
    notes: List[str] = []

    def save(ax, file_name, caption, size=(12, 6.5)):
        figure = ax.figure
        figure.set_size_inches(*size)
        figure.tight_layout()
        figure.savefig(os.path.join(out_dir, file_name), dpi=100)
        plt.close(figure)
        figures.append((file_name, caption))

    if complete:
        ax = plots.plot_optimization_history(study, target_name=monitor)
        ax.set_xlabel("Trial")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        save(ax, "optimization_history.png", f"{monitor} of each completed trial, and the best so far")
    else:
        notes.append("optimization history: no completed trial")

    varying = varying_params(complete)
    if len(complete) >= 2 and len(varying) >= 2:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        try:
            ax = plots.plot_param_importances(study, evaluator=evaluator, params=varying, target_name=monitor)
        except (ValueError, ImportError) as error:  # a distribution that changed; no scikit-learn
            notes.append(f"parameter importances: {first_line(error)}")
        else:
            save(ax, "param_importances.png", f"How much of the variation of {monitor} each parameter explains "
                                              "(fANOVA over the completed trials; params that every one of them has)")
    else:
        notes.append(f"parameter importances: need at least 2 completed trials and 2 params that vary among "
                     f"them (have {len(complete)} trials, {len(varying)} params)")

    groups = list(param_groups(complete))
    for index, (names, label) in enumerate(groups, start=1):
        ax = plots.plot_parallel_coordinate(study, params=names, target_name=monitor)
        # Optuna cuts names to 17 characters; the axis order is the objective, then sorted names.
        ax.set_xticks(range(len(names) + 1))
        ax.set_xticklabels([monitor] + sorted(names), rotation=20, ha="right")
        for lines in ax.collections:  # Optuna's Blues fade to white at the worst trial: start darker
            reverse = lines.get_cmap().name.endswith("_r")
            colors = plt.get_cmap("Blues")(numpy.linspace(0.3, 1.0, 256))
            lines.set_cmap(ListedColormap(colors[::-1] if reverse else colors))
        file_name = "parallel_coordinate.png" if label is None else f"parallel_coordinate_{index}.png"
        caption = "Params of the completed trials" + (f" that have {label}" if label else "")
        save(ax, file_name, caption, size=(max(12, 2.2 * len(names) + 4), 7))
    if not groups:
        notes.append("parallel coordinates: need 2 completed trials with the same params (of one branch)")

    shown = [t for t in trials if t.intermediate_values and t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    if shown:
        ax = plots.plot_intermediate_values(study)
        states = {f"Trial{t.number}": t.state for t in trials}
        for line in ax.get_lines():
            state = states.get(line.get_label())
            if state is not None and state != TrialState.COMPLETE:
                line.set_linestyle("--")
            if state is not None:
                suffix = "" if state == TrialState.COMPLETE else f" ({state.name.lower()})"
                line.set_label(f"trial {line.get_label()[5:]}{suffix}")
        ax.set_xlabel("Epoch")
        ax.set_ylabel(monitor)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        if len(ax.get_lines()) <= 30:
            ax.legend(bbox_to_anchor=(1.02, 1), loc="upper left", borderaxespad=0.0, fontsize="small")
        save(ax, "intermediate_values.png", f"{monitor} after each epoch (dashed: pruned or failed trials)")
    else:
        notes.append("intermediate values: no completed or pruned trial reported an epoch")

    with open(os.path.join(out_dir, "report.html"), "w") as f:
        f.write(report_html(study, trials, monitor, figures, notes, out_dir))
    return notes


def varying_params(complete: List[optuna.trial.FrozenTrial]) -> List[str]:
    """Params that every completed trial has and that take more than one value among them."""
    if not complete:
        return []
    common = set(complete[0].params).intersection(*(t.params for t in complete[1:]))
    return sorted(name for name in common if len({json.dumps(t.params[name]) for t in complete}) > 1)


def param_groups(complete: List[optuna.trial.FrozenTrial]):
    """The sets of params to draw parallel coordinates for: one per set of params the completed
    trials have (a conditional space has one per branch), each with 2 or more trials. Yields
    (names, label): label says which params set the group apart, None when there is one group."""
    groups: Dict[frozenset, int] = {}
    for t in complete:
        groups[frozenset(t.params)] = groups.get(frozenset(t.params), 0) + 1
    groups = {names: n for names, n in groups.items() if n >= 2 and names}
    common = frozenset.intersection(*groups) if groups else frozenset()
    for names in sorted(groups, key=sorted):
        label = None if len(groups) == 1 else ", ".join(sorted(names - common)) or "only the common params"
        yield sorted(names), label


def report_html(study, trials, monitor, figures, notes, out_dir) -> str:
    e = html.escape
    names = space_names(study)
    for t in trials:  # and any param the space no longer has
        names += [name for name in t.params if name not in names]
    names = [name for name in names if any(name in t.params for t in trials)]
    parts = [f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Study {e(study.study_name)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:90%}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#eee}"
             "img{max-width:100%;border:1px solid #ddd}.FAIL{color:#a00}.PRUNED{color:#777}</style></head><body>",
             f"<h1>Study {e(study.study_name)}</h1>",
             f"<p>{len(trials)} trials; monitor <b>{e(monitor)}</b>, {e(study.direction.name.lower())}.</p>"]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        parts.append(f"<h2>Best trial: {best.number}</h2><p>{e(monitor)} = {best.value:.6g}</p><table>")
        parts += [f"<tr><th>{e(k)}</th><td>{e(format_value(v))}</td></tr>"
                  for k, v in in_space_order(study, best.params).items()]
        parts.append("</table>")
    else:
        parts.append("<p>No trial completed.</p>")
    for file_name, caption in figures:
        with open(os.path.join(out_dir, file_name), "rb") as f:
            data = base64.b64encode(f.read()).decode()
        parts.append(f"<h2>{e(caption)}</h2><img src='data:image/png;base64,{data}' alt='{e(file_name)}'>")
    if notes:
        parts.append("<h2>Left out</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    parts.append("<h2>All trials</h2><table><tr><th>#</th><th>state</th><th>value</th><th>seconds</th>"
                 + "".join(f"<th>{e(n)}</th>" for n in names) + "<th>reason</th></tr>")
    for t in trials:
        value = f"{t.value:.6g}" if t.value is not None else ""
        seconds = t.user_attrs.get("seconds")
        cells = [str(t.number), t.state.name, value, f"{seconds:.1f}" if isinstance(seconds, (int, float)) else ""]
        cells += [format_value(t.params[n]) if n in t.params else "" for n in names]
        cells.append(t.user_attrs.get("reason") or "")
        parts.append(f"<tr class='{t.state.name}'>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    parts.append("</table></body></html>\n")
    return "\n".join(parts)


def command_report(args) -> int:
    storage = StudyStorage(args.storage, default_database(args.study), must_exist=True)
    study = storage.load(args.study)
    notes = write_report(study, args.out)
    for n in notes:
        print(f"left out: {n}")
    print(f"report: {os.path.join(args.out, 'report.html')}")
    return 0


def default_database(study: str) -> str:
    return os.path.join(DEFAULT_OUT, f"{study}.db")


# ---------------------------------------------------------------------------------------------
# Replay and space


def replay_command(program: List[str], config_path: str) -> List[str]:
    return with_options(without_config_options(program), ["--config", config_path])


def command_replay(args) -> int:
    storage = StudyStorage(args.storage, default_database(args.study), must_exist=True)
    study = storage.load(args.study)
    if args.trial == "best":
        if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
            raise DriverError(f"study '{args.study}' has no completed trial")
        trial = study.best_trial
    else:
        try:
            number = int(args.trial)
        except ValueError:
            raise DriverError(f"--trial takes a trial number or 'best', not '{args.trial}'")
        trial = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
        if trial is None:
            raise DriverError(f"study '{args.study}' has no trial {number}")
    config = trial.user_attrs.get("config")
    if not isinstance(config, dict):
        raise DriverError(f"trial {trial.number} ({trial.state.name}) has no stored configuration: "
                          "its program ended before its fit began")
    try:
        text = json.dumps(config, indent=2, allow_nan=False)
    except ValueError:
        raise DriverError(f"trial {trial.number}'s configuration holds a value JSON cannot write")
    try:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    except OSError as error:
        raise DriverError(f"cannot write {args.out}: {error.strerror}")
    program = trial.user_attrs.get("program") or ["PROG"]
    print(f"trial {trial.number} ({trial.state.name}): {args.out}")
    print(shlex.join(replay_command(program, args.out)))
    return 0


def command_space(args, program: List[str]) -> int:
    check_program(program)
    space = read_search_space(program)
    width = max((len(p.name) for p in space), default=0)
    print(f"{len(space)} params:")
    for p in space:
        print(f"  {p.name:<{width}}  {p.distribution}")
        if p.when:
            print(f"  {'':<{width}}    only when {describe_when(p.when)}")
    try:
        points = math.prod(len(v) for v in grid_of(space).values())
        print(f"grid: {points} points")
    except DriverError as error:
        print(f"grid: none ({error})")
    return 0


# ---------------------------------------------------------------------------------------------
# The command line


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default where it has one."""

    def _get_help_string(self, action):
        if action.default in (None, False, argparse.SUPPRESS) or action.nargs == "*":
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiln_optuna.py",
        description="Optuna studies over kiln programs: one run of the program per trial (tools/README.md).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  kiln_optuna.py space -- build/examples/tune_breast_cancer\n"
               "  kiln_optuna.py study --study bc --monitor val/auroc --direction maximize --trials 30 \\\n"
               "      --epochs 10 --sampler tpe --group --pruner median -- build/examples/tune_breast_cancer\n"
               "  kiln_optuna.py report --study bc --out bc-report\n"
               "  kiln_optuna.py replay --study bc --trial best --out best.json")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    storage_help = ("where the study lives: an SQLAlchemy URL (sqlite:///PATH, "
                    "postgresql+psycopg2://USER:PASSWORD@HOST:PORT/DB) or journal:PATH "
                    "(default: sqlite:///OUT/STUDY.db)")

    study = commands.add_parser(
        "study", help="run a study's trials (continues an existing one up to --trials)",
        formatter_class=HelpFormatter,
        description="Runs trials of an Optuna study, one run of PROG ARGS... per trial, until the study "
                    "holds --trials trials (running or finished). Run the same command again to continue "
                    "a study, or on several machines at once against one PostgreSQL --storage.")
    study.add_argument("--study", required=True, help="the study's name")
    study.add_argument("--storage", help=storage_help)
    study.add_argument("--monitor", required=True, help="the metric to optimize, as the program logs it (val/auroc)")
    study.add_argument("--direction", required=True, choices=["maximize", "minimize"])
    study.add_argument("--trials", type=int, required=True, help="the number of trials the study should hold")
    study.add_argument("--epochs", type=int, help="passed to each trial as --set fit.epochs=E")
    study.add_argument("--sampler", choices=["tpe", "cmaes", "random", "grid"], default="tpe",
                       help="grid: every combination of categorical choices, int steps and float steps")
    study.add_argument("--multivariate", action="store_true", help="TPE models the params jointly")
    study.add_argument("--group", action="store_true",
                       help="TPE models each branch of a conditional space jointly (implies --multivariate)")
    study.add_argument("--constant-liar", action="store_true",
                       help="TPE treats running trials as bad ones, so parallel workers spread out")
    study.add_argument("--pruner", choices=["median", "successive_halving", "hyperband", "none"], default="median")
    study.add_argument("--startup-trials", type=int, default=5,
                       help="median pruner: completed trials before it prunes any")
    study.add_argument("--warmup-epochs", type=int, default=1,
                       help="median pruner: epochs of each trial that are never pruned")
    study.add_argument("--seed", type=int, help="sampler seed, combined with --worker (default: from the OS)")
    study.add_argument("--worker", type=int, default=0, help="this worker's index, distinct per parallel worker")
    study.add_argument("--value", choices=["last", "best"], default="last",
                       help="a completed trial's value: the monitor at its last epoch, or its best epoch")
    study.add_argument("--grace", type=positive_float, default=60.0,
                       help="seconds a program may take to stop after SIGUSR1 or SIGINT before SIGKILL")
    study.add_argument("--trial-timeout", type=positive_float,
                       help="seconds after which a trial is stopped and marked FAIL")
    study.add_argument("--heartbeat", type=int, default=60,
                       help="seconds between heartbeats of a running trial in an SQL storage, after which "
                            "(twice that) other workers mark a silent worker's trial FAIL; 0: none")
    study.add_argument("--out", default=DEFAULT_OUT,
                       help="directory of the trials' files (OUT/STUDY/trial_NNNN), the report "
                            "and the default database")
    study.add_argument("--no-report", action="store_true", help="skip the report at the end")
    study.add_argument("program", nargs="*", metavar="-- PROG ARGS", help="the kiln program and its arguments")

    report = commands.add_parser("report", help="plots and report.html of a study",
                                 description="Writes PNG plots and report.html "
                                             "(plots embedded, a table of all trials).")
    report.add_argument("--study", required=True, help="the study's name")
    report.add_argument("--storage", help=storage_help.replace("OUT", DEFAULT_OUT))
    report.add_argument("--out", required=True, help="directory for the PNG files and report.html")

    replay = commands.add_parser("replay", help="write a trial's effective configuration for PROG --config",
                                 description="Writes a trial's effective configuration (as its program logged it) "
                                             "as a JSON object, and prints the command that repeats the trial.")
    replay.add_argument("--study", required=True, help="the study's name")
    replay.add_argument("--storage", help=storage_help.replace("OUT", DEFAULT_OUT))
    replay.add_argument("--trial", default="best", help="a trial number, or best")
    replay.add_argument("--out", required=True, help="the JSON file to write")

    space = commands.add_parser("space", help="print a program's search space as Optuna distributions",
                                description="Runs PROG ARGS... --print-search-space and prints what it declares.")
    space.add_argument("program", nargs="*", metavar="-- PROG ARGS", help="the kiln program and its arguments")
    return parser


def main(argv: List[str]) -> int:
    # The program's own options follow "--": kept away from argparse, which would read them.
    program: List[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, program = argv[:at], argv[at + 1:]
    args = build_parser().parse_args(argv)
    if getattr(args, "program", None):
        raise DriverError(f"put the program after --, as in '{args.command} [options] -- {shlex.join(args.program)}'")
    quiet_optuna()
    if args.command == "study":
        return command_study(args, program)
    if args.command == "space":
        return command_space(args, program)
    if program:
        raise DriverError(f"'{args.command}' takes no program")
    if args.command == "report":
        return command_report(args)
    return command_replay(args)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except DriverError as error:
        if error.details:
            sys.stderr.write(error.details if error.details.endswith("\n") else error.details + "\n")
        note(str(error))
        sys.exit(2)
    except KeyboardInterrupt:
        note("interrupted")
        sys.exit(130)
    except BrokenPipeError:  # stdout piped into head, say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
