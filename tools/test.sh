#!/usr/bin/env bash
# The course's test command: sets up .venv (if needed) with the test tools and
# runs every test, notebooks included (at the smoke size, on the CPU).
#   bash tools/test.sh            # everything
#   bash tools/test.sh -k models  # extra arguments go to pytest
# Also installs, when missing: ipywidgets 7.7 (Colab's) into .venv-ipywidgets7/
# for tests/test_widgets_compat.py, and, when run as root on Debian, the
# `chromium` package for tests/test_browser.py (Playwright drives it; no
# `playwright install`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -r requirements-dev.txt -e .

# ipywidgets 7.7 as on Colab, beside the venv's 8.x: only the widget packages
# (the kernel, traitlets and IPython come from .venv); PYTHONPATH puts it first.
if [ ! -d .venv-ipywidgets7/ipywidgets-7.7.5.dist-info ]; then
  rm -rf .venv-ipywidgets7
  .venv/bin/python -m pip install -q --no-deps --target .venv-ipywidgets7 \
    "ipywidgets==7.7.5" "widgetsnbextension~=3.6.4" "jupyterlab_widgets>=1.0,<2" "ipython_genutils~=0.2.0"
fi

# A browser for tests/test_browser.py: Debian's chromium (Playwright's own download is not reachable).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing chromium (apt-get) for the browser test..."
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
    echo "warning: could not install chromium; the browser test will skip (fail in CI)" >&2
  fi
fi

export COURSE_SMOKE=1
# Offline datasets: use ../shared/datasets when it is there (CI), else data/.
if [ -z "${COURSE_DATA_DIR:-}" ] && [ -d ../shared/datasets ]; then
  export COURSE_DATA_DIR="$(cd ../shared/datasets && pwd)"
fi
echo "COURSE_DATA_DIR=${COURSE_DATA_DIR:-<unset: data/>}"

set +e
# Two workers (pytest-xdist): the notebooks' kernels and the browser share the
# cores (tests/test_notebooks.py gives each kernel cores/workers threads).
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadgroup --durations=15 "$@"
status=$?
set -e
# pytest exits 5 when nothing was collected: that is a failure here, not a pass.
exit $status
