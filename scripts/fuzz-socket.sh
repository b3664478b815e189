#!/usr/bin/env bash
# Fuzz the socket frame codec with libFuzzer for a bounded time (make fuzz; not part of unit tests).
# Usage: scripts/fuzz-socket.sh [seconds] [extra libFuzzer flags...]   (default 60 s, 512 MB RSS limit)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
shift || true
swiftc="${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}"
out="$root/.build/fuzz"
corpus="$out/socket-corpus"
mkdir -p "$out" "$corpus"
cp -n "$root"/Tests/Fuzz/SocketFrameFuzz/corpus/* "$corpus"/ 2>/dev/null || true

"$swiftc" -sanitize=fuzzer,address -parse-as-library -O -g -module-name SocketFrameFuzz \
    -package-name k8s_micro -swift-version 6 \
    "$root"/Sources/Shared/SocketProtocol/*.swift "$root"/Tests/Fuzz/SocketFrameFuzz/*.swift \
    -o "$out/socket-frame-fuzz"

cd "$out"
exec "$out/socket-frame-fuzz" "$corpus" -max_total_time="$seconds" -rss_limit_mb=512 -max_len=4096 \
    -print_final_stats=1 "$@"
