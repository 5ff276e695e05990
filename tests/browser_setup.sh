#!/usr/bin/env bash
# What tests/test_browser.py needs: Debian's chromium and the Playwright client library.
# Playwright drives the system browser (executable_path=/usr/bin/chromium); never run
# `playwright install`, which downloads a browser build of its own and fails offline.
# Usage: bash tests/browser_setup.sh [PYTHON]   (default .venv/bin/python)
set -euo pipefail
PY=${1:-.venv/bin/python}

if [ ! -x /usr/bin/chromium ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    echo "Installing Debian's chromium for the browser test (about a minute)..."
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        chromium fonts-dejavu-core >/dev/null
fi

if ! "$PY" -c "import playwright" 2>/dev/null; then
    "$PY" -m pip install -qq "playwright==1.65.2"
fi
/usr/bin/chromium --version 2>/dev/null  # its wrapper script warns about memory on stderr
