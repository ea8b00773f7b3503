#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, only if missing.
set -euo pipefail
# libjpeg-dev: the fake V4L2 device (CaptureKit tests) encodes its MJPEG frames with libjpeg.
# libopenblas0-pthread: dlib's ResNet through OpenBLAS takes ~35 ms a face, through reference BLAS ~270 ms.
pkgs=(pkg-config libopencv-dev libdlib-dev libblas-dev liblapack-dev libv4l-dev v4l-utils
      libxlsxwriter-dev libsqlite3-dev python3-skimage opencv-doc python3-venv
      libopenblas0-pthread libjpeg-dev python3-openpyxl
      prometheus systemd util-linux chromium chromium-driver fonts-dejavu-core postgresql)
# prometheus: its promtool checks the daemon's /metrics (GateReplayTests); systemd: systemd-analyze checks the unit;
# chromium, chromium-driver: the console's browser test (ConsoleBrowserEndToEndTests); fonts-dejavu-core: Vietnamese glyphs.
# util-linux: prlimit fills the reference gateway's disk (ConnectorFaultTests).
# postgresql: the school's shared database; the tests start a throwaway cluster (scripts/pg-cluster.sh).
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  echo "installing: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
