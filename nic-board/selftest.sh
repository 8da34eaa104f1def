#!/usr/bin/env bash
# Builds the bare-metal images (profile `board`: for size, LTO) and checks them:
#  1. the QEMU self-test image runs on qemu-system-riscv32 (virt machine) and prints
#     `selftest: N passed, 0 failed`;
#  2. the board image fits its flash budget (README: 128 KiB of text + rodata + data).
# Needs: rustup target riscv32imac-unknown-none-elf; Debian packages qemu-system-misc and
# binutils-riscv64-unknown-elf.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=riscv32imac-unknown-none-elf
FLASH_BUDGET=$((128 * 1024))
OUT=target/$TARGET/board

cargo build -p nic-board --profile board --target "$TARGET" --bins
cargo build -p nic-board --profile board --target "$TARGET" --bin board --features defmt

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
timeout 60 qemu-system-riscv32 -machine virt -nographic -bios none \
    -kernel "$OUT/qemu-selftest" </dev/null >"$log" 2>&1 || status=$?
tr -d '\r' <"$log"
if [ "$status" -ne 0 ]; then
    echo "nic-board selftest: qemu exited with status $status" >&2
    exit 1
fi
if ! tr -d '\r' <"$log" | grep -Eq '^selftest: [1-9][0-9]* passed, 0 failed$'; then
    echo "nic-board selftest: no passing summary line" >&2
    exit 1
fi
if tr -d '\r' <"$log" | grep -q '\.\.\. FAIL$'; then
    echo "nic-board selftest: a check failed" >&2
    exit 1
fi

# The silent board image (no defmt) is what the budget is for; the defmt build is reported.
cargo build -p nic-board --profile board --target "$TARGET" --bin board
for variant in board; do
    read -r text data _ < <(riscv64-unknown-elf-size "$OUT/$variant" | awk 'NR == 2 { print $1, $2, $3 }')
    flash=$((text + data))
    echo "nic-board image: $variant flash $flash bytes (text+rodata $text, data $data), budget $FLASH_BUDGET"
    if [ "$flash" -gt "$FLASH_BUDGET" ]; then
        echo "nic-board image: $variant is over its flash budget" >&2
        exit 1
    fi
done
