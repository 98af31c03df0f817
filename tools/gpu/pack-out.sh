#!/usr/bin/env bash
# Run ON THE GPU MACHINE as the last step of a device command that wrote many files under $OUT (several
# benchmark runs, test logs): a call brings back only so many files, and the rest are lost with the
# machine (the twenty-ninth session lost a call's results so). Packs everything under $OUT, JUnit XML
# left out, into $OUT/out.tgz and removes the rest; unpack here with: tar xzf FILES_AT/out.tgz -C DIR.
# Usage: bash tools/gpu/pack-out.sh
set -euo pipefail
: "${OUT:?OUT is not set (the device tool sets it)}"
packed=$(mktemp --suffix=.tgz)
tar czf "$packed" -C "$OUT" --exclude=junit --exclude=out.tgz .
find "$OUT" -mindepth 1 -delete
mv "$packed" "$OUT/out.tgz"
echo "pack-out: $(du -h "$OUT/out.tgz" | cut -f1) in $OUT/out.tgz"
