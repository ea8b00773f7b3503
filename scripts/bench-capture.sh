#!/usr/bin/env bash
# Capture benchmark (issue 3): cost per frame of V4L2 capture + conversion to BGR at
# 640x480 and 1280x720, YUYV and MJPEG, through libv4l2/libv4lconvert against the
# user-space fake device, and CPU per camera at 30 fps. Prints medians.
#   BENCH_TRIALS=7 BENCH_FRAMES=60 BENCH_SECONDS=4 scripts/bench-capture.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH=${SCRATCH_PATH:-.build}
swift build -c release --scratch-path "$SCRATCH" --product capture-bench >&2
exec "$SCRATCH/release/capture-bench" "$@"
