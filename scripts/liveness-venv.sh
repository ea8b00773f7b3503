#!/usr/bin/env bash
# The Python venv for scripts/liveness-onnx.py (MiniFASNet .pth -> ONNX): pinned onnx, numpy and protobuf from
# PyPI in .venv-liveness/ (git-ignored). Idempotent; prints the venv's python. No PyTorch is needed or installed.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-liveness
pins=("onnx==1.17.0" "numpy==1.26.4" "protobuf==5.29.3")
check='import onnx, numpy, google.protobuf as p; assert (onnx.__version__, numpy.__version__, p.__version__) == ("1.17.0", "1.26.4", "5.29.3")'
if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "$check" 2>/dev/null; then
  echo "$PWD/$venv/bin/python"; exit 0
fi
rm -rf "$venv"
if python3 -m venv "$venv" >/dev/null 2>&1 &&
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary :all: "${pins[@]}" >&2 &&
  "$venv/bin/python" -c "$check"; then
  echo "$PWD/$venv/bin/python"; exit 0
fi
rm -rf "$venv"
echo "cannot set up $venv (${pins[*]} from PyPI)" >&2
exit 1
