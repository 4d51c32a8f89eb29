#!/bin/bash
# Two study drivers, run as parallel processes, share one study in a real PostgreSQL server.
#
#   tests/tune/postgres_study.sh PROG [ARGS...]      e.g. build/examples/tune_breast_cancer
#
# Debian's pg_virtualenv (postgresql-common) creates a throwaway cluster listening on localhost,
# runs this script again inside it with PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE set, then stops
# and removes the cluster however the script ends. Checked afterwards:
#   - the study holds exactly TRIALS trials, each COMPLETE, PRUNED or FAIL (none RUNNING);
#   - both workers ran trials, and no two trials have the same params;
#   - study.best_value equals the monitor's last value in the best trial's own log.
# PROG must log val/auroc (maximized), like tools/kiln_optuna.py's other tests assume.
set -euo pipefail

TRIALS=8
EPOCHS=3
MONITOR=val/auroc
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
driver="$here/../../tools/kiln_optuna.py"

if [ $# -lt 1 ]; then
  echo "usage: $0 PROG [ARGS...]" >&2
  exit 2
fi

if [ -z "${KILN_INSIDE_PG_VIRTUALENV:-}" ]; then
  # -t: the cluster lives in a temporary directory, even for root (nothing under /etc).
  KILN_INSIDE_PG_VIRTUALENV=1 exec pg_virtualenv -t "$0" "$@"
fi

work=$(mktemp -d -t kiln_postgres_study.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Over TCP to localhost, as workers on other machines would connect.
storage="postgresql+psycopg2://$PGUSER:$PGPASSWORD@localhost:$PGPORT/$PGDATABASE"
echo "PostgreSQL $(psql -h localhost -XAtc 'SHOW server_version') on localhost:$PGPORT"

# Each worker has its own --out, as on separate machines; --seed with distinct --worker indices.
for worker in 0 1; do
  "$driver" study --study shared --storage "$storage" --monitor "$MONITOR" --direction maximize \
    --trials "$TRIALS" --epochs "$EPOCHS" --sampler tpe --constant-liar --seed 7 --worker "$worker" \
    --pruner median --startup-trials 2 --out "$work/worker$worker" --no-report -- "$@" \
    >"$work/worker$worker.txt" 2>&1 &
  pids+=($!)
done
status=0
for i in 0 1; do
  if ! wait "${pids[$i]}"; then
    echo "worker $i failed:" >&2
    status=1
  fi
  cat "$work/worker$i.txt"
done
pids=()
[ $status -eq 0 ] || exit 1

/usr/bin/python3 - "$storage" "$TRIALS" "$MONITOR" <<'EOF'
import collections
import json
import sys

import optuna

storage, trials_wanted, monitor = sys.argv[1], int(sys.argv[2]), sys.argv[3]
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.load_study(study_name="shared", storage=storage)
trials = study.trials
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


check(len(trials) == trials_wanted, f"the study holds {len(trials)} trials, not {trials_wanted}")
states = collections.Counter(t.state.name for t in trials)
check(set(states) <= {"COMPLETE", "PRUNED", "FAIL"}, f"trial states: {dict(states)}")
workers = collections.Counter(t.user_attrs.get("worker") for t in trials)
check(set(workers) == {0, 1}, f"trials per worker: {dict(workers)}")
param_sets = collections.Counter(json.dumps(t.params, sort_keys=True) for t in trials)
check(max(param_sets.values()) == 1, "params run twice: " + ", ".join(p for p, n in param_sets.items() if n > 1))

best = study.best_trial
with open(best.user_attrs["log"]) as f:
    epochs = [r for r in map(json.loads, filter(str.strip, f)) if "epoch" in r]
logged = epochs[-1]["metrics"][monitor]
check(study.best_value == logged, f"best value {study.best_value!r}, but trial {best.number}'s log ends at {logged!r}")

print(f"{len(trials)} trials: {dict(states)}; per worker {dict(workers)}; best trial {best.number}, "
      f"{monitor}={study.best_value}")
if failures:
    sys.exit("FAIL: " + "; ".join(failures))
print("OK")
EOF
