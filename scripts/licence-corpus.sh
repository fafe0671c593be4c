#!/usr/bin/env bash
# Gathers the licence texts every Debian system ships (/usr/share/common-licenses) into OUT_DIR
# as one .txt file each: the quick start's text where ../shared is missing. Symbolic links
# (GPL -> GPL-3, ...) are skipped so that no text appears twice.
set -euo pipefail
out=${1:?usage: licence-corpus.sh OUT_DIR}
src=/usr/share/common-licenses
[ -d "$src" ] || { echo "error: $src is missing (not a Debian system?)" >&2; exit 1; }
mkdir -p "$out"
n=0
while IFS= read -r -d '' f; do
  cp "$f" "$out/$(basename "$f").txt"
  n=$((n + 1))
done < <(find "$src" -maxdepth 1 -type f -print0 | sort -z)
[ "$n" -gt 0 ] || { echo "error: no licence texts in $src" >&2; exit 1; }
echo "licence-corpus: $n texts from $src in $out"
