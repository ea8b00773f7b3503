#!/usr/bin/env bash
# The console's browser test: Debian's chromium and chromium-driver (installed by install-deps.sh) driven by
# Python's selenium, with openpyxl to read the downloaded XLSX back, in .venv-browser/ (git-ignored).
# Idempotent; prints the venv's python.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-browser
if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "import selenium, openpyxl" 2>/dev/null; then
  echo "$PWD/$venv/bin/python"; exit 0
fi
rm -rf "$venv"
python3 -m venv "$venv" >/dev/null
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "selenium==4.27.1" "openpyxl==3.1.5" >/dev/null
echo "$PWD/$venv/bin/python"
