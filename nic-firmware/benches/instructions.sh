#!/bin/sh
# Instructions per packet of the pipeline, by frame kind, on the `pipeline` bench's tables
# and frames: callgrind counts instructions, not time, so the figure is the same on a busy
# machine. Usage: nic-firmware/benches/instructions.sh [ROUNDS]   (default 2: each of the
# 256 VFs' batches twice per kind). Needs valgrind. Prints a markdown table; with
# CALLGRIND_OUT=FILE it keeps callgrind's profile there, for callgrind_annotate.
set -eu
rounds=${1:-2}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target-bench}
# The code as the bench builds it (the release profile keeps line tables for the names).
cargo bench -p nic-firmware --features testing --bench pipeline --no-run 2>/dev/null
bin=$(ls -t "$CARGO_TARGET_DIR"/release/deps/pipeline-* | grep -v '\.d$' | head -1)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
PIPELINE_COUNT=$rounds valgrind --tool=callgrind --callgrind-out-file="$out/cg" \
    --toggle-collect='pipeline::counted_*' "$bin" --bench >"$out/stdout" 2>"$out/stderr"
if [ -n "${CALLGRIND_OUT:-}" ]; then cp "$out/cg" "$CALLGRIND_OUT"; fi
callgrind_annotate --inclusive=yes "$out/cg" >"$out/annotated"
echo "| frames | instructions per packet |"
echo "| --- | ---: |"
grep "^COUNT" "$out/stdout" | while read -r _ name _ packets _; do
    ir=$(grep -E "pipeline::${name}[ (]|pipeline::${name}\$" "$out/annotated" | head -1 \
        | awk '{gsub(",", "", $1); print $1}')
    echo "| ${name#counted_} | $(( ir / packets )) |"
done
