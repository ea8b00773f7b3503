#!/usr/bin/env bash
# Runs a command with the user-space fake V4L2 device preloaded (DESIGN.md), e.g.
#   scripts/fake-v4l2.sh v4l2-ctl -d /dev/video0 --list-formats-ext
#   scripts/fake-v4l2.sh .build/debug/attendance cameras list --device /dev/video0
# Environment: FAKE_V4L2_DEVICE (default /dev/video0), FAKE_V4L2_FORMATS (YUYV,MJPG),
# FAKE_V4L2_SIZES (640x480,1280x720), FAKE_V4L2_FPS (30).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
lib="$root/.build/fake-v4l2/libfakev4l2.so"
src="$root/Sources/CFakeV4L2/fake_v4l2.c"
if [[ ! -f "$lib" || "$src" -nt "$lib" ]]; then
  mkdir -p "$(dirname "$lib")"
  ${CC:-cc} -shared -fPIC -O2 -Wall -I"$root/Sources/CFakeV4L2/include" -o "$lib" "$src" -ljpeg -ldl -lpthread
fi
export FAKE_V4L2_DEVICE="${FAKE_V4L2_DEVICE:-/dev/video0}"
LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}" exec "$@"
