#!/bin/sh
# Build the C examples into wasm next to their sources (the .wasm files are
# build output: do not commit them). Needs clang, lld and wasi-libc:
#   apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32
# Usage: examples/build.sh [CLANG]     (default: clang)
set -eu
cd "$(dirname "$0")"
CLANG="${1:-${CLANG:-clang}}"

for src in count_vowels.c; do
  out="${src%.c}.wasm"
  "$CLANG" --target=wasm32-wasi -O2 -mexec-model=reactor -I ../pdk/c \
    -o "$out" "$src"
  # The module must import only extism:host/env (no WASI) to run with WASI off.
  if command -v wasm-objdump >/dev/null 2>&1; then
    if wasm-objdump -j Import -x "$out" | grep -- '<-' | grep -v 'extism:host/env\.' ; then
      echo "error: $out imports something other than extism:host/env" >&2
      exit 1
    fi
  fi
  echo "built examples/$out"
done
