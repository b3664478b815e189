#!/usr/bin/env bash
# Image-size estimate of one release binary (docs/footprint.md): binary, stripped, gzip, and its non-base libs.
# Usage: bash mk/footprint.sh .build/release/k8s-micro-gateway [more binaries...]
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 BINARY... (e.g. .build/release/k8s-micro-gateway; build it first)" >&2; exit 2; }

# Libraries every glibc base image already has: not counted.
BASE_LIBS='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so|libstdc\+\+|libgcc_s)'

human() { numfmt --to=iec-i --suffix=B "$1"; }

for bin in "$@"; do
  [ -x "$bin" ] || { echo "footprint: $bin is not an executable (build it first)" >&2; exit 1; }
  tmp=$(mktemp)
  cp "$bin" "$tmp"
  strip "$tmp"
  size=$(stat -c %s "$bin")
  stripped=$(stat -c %s "$tmp")
  gz=$(gzip -9c "$tmp" | wc -c)
  echo "== $(basename "$bin")"
  echo "binary            $(human "$size")"
  echo "stripped          $(human "$stripped")"
  echo "stripped, gzip -9 $(human "$gz")   (about what the layer costs compressed)"
  if readelf -d "$bin" | grep -q 'NEEDED.*\(libswift\|Foundation\|libdispatch\)'; then
    echo "WARNING: the Swift runtime is linked dynamically: build with --static-swift-stdlib"
  fi
  # Symbols read once into a file: `nm | grep -q` fails under pipefail when grep exits early (SIGPIPE).
  syms=$(mktemp)
  nm "$bin" > "$syms" 2>/dev/null || true
  if grep -q -i 'icudt' "$syms"; then
    echo "note: ICU data (_FoundationICU) is linked in: some module imports Foundation, not FoundationEssentials"
  fi
  # What else a module can drag in unnoticed (docs/footprint.md): report it when the symbols are there.
  if grep -q '20FoundationEssentials' "$syms"; then
    echo "note: FoundationEssentials is linked in (about 4.5 MB with _FoundationCollections)"
  fi
  if grep -q '17_StringProcessing' "$syms"; then
    echo "note: _StringProcessing + _RegexParser are linked in (1.2 MB; String.contains(String), firstRange, ...)"
  fi
  if readelf -p .comment "$bin" 2>/dev/null | grep -q 'LLD'; then
    echo "linker            lld"
  fi
  libs=0
  libs_gz=0
  echo "shared libraries beyond the base image's (file, package, size, gzip -9):"
  while read -r soname path; do
    real=$(realpath "$path")
    pkg=$(dpkg -S "*/${soname}" 2>/dev/null | awk -F: 'NR == 1 { print $1 }' || true)
    s=$(stat -c %s "$real")
    g=$(gzip -9c "$real" | wc -c)
    libs=$((libs + s))
    libs_gz=$((libs_gz + g))
    printf '  %-38s %-20s %10s %10s\n' "$soname" "${pkg:-?}" "$(human "$s")" "$(human "$g")"
  done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | grep -Ev "$BASE_LIBS")
  echo "libraries total   $(human "$libs") ($(human "$libs_gz") gzip -9)"
  echo "binary + libs     $(human $((stripped + libs))) ($(human $((gz + libs_gz))) gzip -9)"
  echo "add the runtime base image (docs/footprint.md) for the image estimate"
  rm -f "$tmp" "$syms"
done
