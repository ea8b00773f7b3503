#!/usr/bin/env bash
# An independent XLSX reader for the export tests: Python openpyxl in .venv-xlsx/ (git-ignored).
# Idempotent; prints the venv's python. Tries PyPI first, then Debian's python3-openpyxl.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-xlsx
if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "import openpyxl" 2>/dev/null; then
  echo "$PWD/$venv/bin/python"; exit 0
fi
rm -rf "$venv"
if python3 -m venv "$venv" >/dev/null 2>&1 && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "openpyxl==3.1.5" >/dev/null 2>&1; then
  echo "$PWD/$venv/bin/python"; exit 0
fi
rm -rf "$venv"
# Offline fallback: Debian's openpyxl through the system python.
if /usr/bin/python3 -c "import openpyxl" 2>/dev/null || { command -v apt-get >/dev/null && apt-get install -y -qq python3-openpyxl >/dev/null 2>&1; }; then
  /usr/bin/python3 -m venv --system-site-packages "$venv" >/dev/null
  "$venv/bin/python" -c "import openpyxl"
  echo "$PWD/$venv/bin/python"; exit 0
fi
echo "cannot set up openpyxl (no PyPI and no python3-openpyxl)" >&2
exit 1
