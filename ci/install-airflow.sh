#!/usr/bin/env bash
# Install Apache Airflow 3.3.2 into its own venv (kept apart from loopc's venv); skip if already importable.
#   LOOPC_AIRFLOW_VENV  where the venv goes (default /opt/loopc-airflow)
#   PYTHON              interpreter that creates the venv (default python3, must be 3.11 for the constraints)
# Afterwards: export LOOPC_AIRFLOW_PYTHON="$LOOPC_AIRFLOW_VENV/bin/python"
set -euo pipefail
cd "$(dirname "$0")/.."

AIRFLOW_VERSION=3.3.2
VENV=${LOOPC_AIRFLOW_VENV:-/opt/loopc-airflow}
PYTHON=${PYTHON:-python3}
CONSTRAINTS=ci/constraints-airflow-${AIRFLOW_VERSION}-py3.11.txt
LOG=${VENV}.pip.log

installed() {
  "$VENV/bin/python" - "$AIRFLOW_VERSION" >/dev/null 2>&1 <<'PY'
import sys
from importlib import metadata
assert metadata.version("apache-airflow") == sys.argv[1]
import airflow.sdk  # noqa: F401  (importable, not just present)
from airflow.providers.standard.operators.bash import BashOperator  # noqa: F401
PY
}

if [ -x "$VENV/bin/python" ] && installed; then
  echo "apache-airflow $AIRFLOW_VERSION already installed in $VENV"
  exit 0
fi

start=$(date +%s)
"$PYTHON" -m venv "$VENV" || { echo "cannot create a venv at $VENV with $PYTHON (set PYTHON to a Python 3.11)" >&2; exit 1; }
{
  "$VENV/bin/python" -m pip install -U pip &&
  "$VENV/bin/python" -m pip install "apache-airflow==$AIRFLOW_VERSION" -c "$CONSTRAINTS"
} >"$LOG" 2>&1 || {
  echo "installing apache-airflow $AIRFLOW_VERSION into $VENV failed; last lines of $LOG:" >&2
  tail -n 50 "$LOG" >&2
  exit 1
}
installed || { echo "apache-airflow $AIRFLOW_VERSION installed but not importable from $VENV" >&2; exit 1; }
echo "apache-airflow $AIRFLOW_VERSION installed in $VENV in $(( $(date +%s) - start )) s (log: $LOG)"
