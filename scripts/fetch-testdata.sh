#!/usr/bin/env bash
# Test images (never committed): face_recognition 1.3.0's sdist test images,
# Debian's skimage astronaut and OpenCV's messi5. Placed in .testdata/.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.testdata
mkdir -p "$dest" .cache/sdist
if [[ ! -f "$dest/obama.jpg" ]]; then
  sdist=$(ls .cache/sdist/face_recognition-1.3.0.tar.gz 2>/dev/null || true)
  if [[ -z "$sdist" ]]; then
    python3 -m pip download --quiet --no-deps --no-binary :all: face_recognition==1.3.0 -d .cache/sdist
  fi
  tar -xzf .cache/sdist/face_recognition-1.3.0.tar.gz -C "$dest" --strip-components=3 face_recognition-1.3.0/tests/test_images
fi
for f in /usr/lib/python3/dist-packages/skimage/data/astronaut.png; do
  [[ -f "$f" ]] && cp -f "$f" "$dest/astronaut.png"
done
m=$(ls /usr/share/doc/opencv-doc/examples/data/messi5.jpg* 2>/dev/null | head -1 || true)
if [[ -n "$m" ]]; then
  case "$m" in *.gz) gunzip -c "$m" > "$dest/messi5.jpg";; *) cp -f "$m" "$dest/messi5.jpg";; esac
fi
ls "$dest"
