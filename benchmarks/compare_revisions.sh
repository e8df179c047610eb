#!/usr/bin/env bash
# BPG speed at two git revisions, measured alternately on this machine so load hits both alike.
# Usage: bash benchmarks/compare_revisions.sh REV_BEFORE REV_AFTER [ROUNDS] [-- bpg_speed args]
# Prints each round's decode/encode medians (benchmarks/bpg_speed.py of each revision) and the
# median ratio after/before of the decode medians. Runs with this checkout's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
before="${1:?usage: compare_revisions.sh REV_BEFORE REV_AFTER [ROUNDS] [-- bpg_speed args]}"
after="${2:?usage: compare_revisions.sh REV_BEFORE REV_AFTER [ROUNDS] [-- bpg_speed args]}"
rounds="${3:-3}"
shift $(( $# >= 3 ? 3 : $# ))
[ "${1:-}" = "--" ] && shift
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--images ../shared/data/kodak --limit 6 --repeats 3)
py="$(pwd)/.venv/bin/python"
tmp="$(mktemp -d)"
trap 'git worktree remove --force "$tmp/before" >/dev/null 2>&1; git worktree remove --force "$tmp/after" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
git worktree add -q --detach "$tmp/before" "$before"
git worktree add -q --detach "$tmp/after" "$after"
abs_args=()
for a in "${args[@]}"; do
    if [ -e "$a" ]; then abs_args+=("$(realpath "$a")"); else abs_args+=("$a"); fi
done
for i in $(seq "$rounds"); do
    for side in before after; do
        rev="$([ $side = before ] && echo "$before" || echo "$after")"
        out="$(cd "$tmp/$side" && PYTHONPATH="$tmp/$side" "$py" benchmarks/bpg_speed.py "${abs_args[@]}")"
        dec="$(grep -m1 '^decode median' <<<"$out" | grep -oE '[0-9]+\.[0-9]+' | head -1)"
        enc="$(grep -m1 'our BPG encode' <<<"$out" | cut -d'|' -f3 | tr -d ' ')"
        echo "round $i $side ($rev): decode median ${dec} ms, encode median ${enc} ms"
        echo "$dec" >> "$tmp/$side.dec"
    done
done
paste "$tmp/before.dec" "$tmp/after.dec" | "$py" -c '
import statistics, sys
rows = [tuple(map(float, line.split())) for line in sys.stdin if line.strip()]
b = statistics.median(r[0] for r in rows); a = statistics.median(r[1] for r in rows)
print(f"decode median over rounds: before {b:.2f} ms, after {a:.2f} ms, ratio after/before {a / b:.3f}")'
