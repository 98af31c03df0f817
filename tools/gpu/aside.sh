#!/usr/bin/env bash
# Run HERE, around a device call: the working tree and .gpu/ travel together under 64 MiB, which the
# tree alone nearly fills. `aside` moves out what no GPU run reads (the demo model's weights, the
# tokenizer test's expected ids, benchmarks/results, the Java sources) and prints what would travel; `restore` puts them
# back from git. The files aside are marked skip-worktree, so that `git add -A` or `commit -a` made
# while they are away does not record their deletion (a session's commit once did); restore right after each call.
# Usage: tools/gpu/aside.sh aside | restore | size
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# The Java sources travel compiled in .gpu (the GPU machine has a runtime, no compiler), and the modules
# no GPU run loads stay behind too.
paths=(models/jvllm-demo/model.safetensors tokenizer/src/test/resources/tokenizers/expected.json benchmarks/results
  engine-core/src/main/java engine-core/src/test/java kernels-native/src/main/java kernels-native/src/test/java
  model-zoo/src/main/java model-zoo/src/test/java tokenizer/src server/src plugins/langchain4j/src plugins/spring-ai/src examples)
limit=$((64 << 20))

size() {
  local tree kit
  # Files moved aside are still in the index: stat skips them (and its status is not the size's).
  tree=$({ git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null || true; } \
    | awk '{s += $1} END {print s + 0}')
  kit=$( [[ -d .gpu ]] && du -sb .gpu | cut -f1 || echo 0)
  echo "travels: tree $((tree >> 20)) MiB + .gpu $((kit >> 20)) MiB = $(((tree + kit) >> 20)) MiB of 64"
  if (( tree + kit > limit )); then echo "aside.sh: over the limit: trim .gpu (another branch's jars?)"; fi
}

case ${1:-} in
  aside)
    for p in "${paths[@]}"; do
      [[ -e $p ]] || continue
      git ls-files --error-unmatch "$p" > /dev/null 2>&1 || { echo "aside.sh: $p is not tracked; not moved" >&2; continue; }
      [[ -z $(git status --porcelain -- "$p") ]] || { echo "aside.sh: $p has uncommitted or untracked changes; commit them first" >&2; exit 1; }
      git ls-files -z -- "$p" | xargs -0 git update-index --skip-worktree
      rm -rf "$p"
    done
    size ;;
  restore)
    git ls-files -z -- "${paths[@]}" | xargs -0 git update-index --no-skip-worktree
    git checkout -- "${paths[@]}"
    git status --short ;;
  size) size ;;
  *) echo "usage: $0 aside | restore | size" >&2; exit 2 ;;
esac
