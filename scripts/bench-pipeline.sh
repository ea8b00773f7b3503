#!/usr/bin/env bash
# The whole gate pipeline on the replays of #16 (empty gate, steady arrivals, the morning rush; 15 and 30
# frames/s; one and two cameras), played in real time like cameras, against face_recognition 1.3.0 on frames
# of the same videos. Prints one line per run:
#   pipeline scenario=S cameras=C fps=F cpu_per_camera=X dropped=D recorded=R expected=E wrong=W p50_ms=A p95_ms=B [vs_face_recognition=Z]
# The default run takes about 50 minutes (the empty gate is 10 minutes of video, four times); BENCH_QUICK=1
# shortens the replays (60 s empty gate, 30 s others) to about 8 minutes. See Sources/PipelineBench/main.swift
# for BENCH_SCENARIOS, BENCH_FPS, BENCH_CAMERAS, BENCH_EMPTY_SECONDS, BENCH_SECONDS, BENCH_FR_FRAMES.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product pipeline-bench >/dev/null
scripts/reference-venv.sh >/dev/null
.venv-ref/bin/python -c "import cv2" 2>/dev/null || .venv-ref/bin/pip install -q opencv-python-headless
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
BENCH_PYTHON=${BENCH_PYTHON:-.venv-ref/bin/python} .build/release/pipeline-bench
