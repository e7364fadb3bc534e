#!/usr/bin/env bash
# The course's test command: sets up .venv (if needed) with the test tools and
# runs every test, notebooks included (in smoke mode, on the CPU).
#   bash tools/test.sh            # everything
#   bash tools/test.sh -k models  # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -r requirements-dev.txt -e .

export COURSE_SMOKE=1
# Offline datasets: use ../shared/datasets when it is there (CI), else data/.
if [ -z "${COURSE_DATA_DIR:-}" ] && [ -d ../shared/datasets ]; then
  export COURSE_DATA_DIR="$(cd ../shared/datasets && pwd)"
fi
echo "COURSE_DATA_DIR=${COURSE_DATA_DIR:-<unset: data/>}"

set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
# pytest exits 5 when nothing was collected: that is a failure here, not a pass.
exit $status
