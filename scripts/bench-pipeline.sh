#!/usr/bin/env bash
# Replay throughput of the whole pipeline with one and two cameras, per-stage latency and decision
# latency, against face_recognition (Python) on the same frames, in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product attendance >/dev/null
for n in 1 2; do
  echo "== ours, $n camera(s)"
  rm -rf out/bench-$n
  .build/release/attendance demo --dir out/bench-$n --cameras $n | grep -E "decided in|frames/s|stages"
done
scripts/reference-venv.sh
.venv-ref/bin/python -c "import cv2" 2>/dev/null || .venv-ref/bin/pip install -q opencv-python-headless
echo "== face_recognition 1.3.0, same frames"
.venv-ref/bin/python scripts/face_recognition_bench.py out/bench-1/gate-replay.avi .testdata/obama.jpg .testdata/biden.jpg
