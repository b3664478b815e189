#!/usr/bin/env bash
# Builds every libFuzzer target (swiftc -sanitize=fuzzer,address) into .build-fuzz/ and runs each for a
# bounded time, then prints executions, executions/s and crashes per target. Exits 1 on any crash.
# Usage: scripts/fuzz.sh [target...]      (default: every target; `scripts/fuzz.sh --list` names them)
#   FUZZ_SECONDS   seconds per target (default 60)
#   FUZZ_OPT       optimisation for the fuzz builds (default -O; the test command passes -Onone, faster to build)
#   FUZZ_ARGS      extra libFuzzer flags, e.g. "-runs=10000000" for a run bounded by executions
# Each target's seed corpus is Tests/Fuzz/<Dir>/corpus (in the repo); the inputs it finds go to
# .build-fuzz/<target>/corpus. Tests/Fuzz/<Dir>/regressions/ holds inputs that once crashed: every run
# replays them first. A crash leaves .build-fuzz/<target>/crash-<sha1>: copy it into regressions/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds="${FUZZ_SECONDS:-60}"
opt="${FUZZ_OPT:--O}"
read -r -a extra <<<"${FUZZ_ARGS:-}"
swiftc="${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}"
out="$root/.build-fuzz"

# target → its directory under Tests/Fuzz, the sources compiled with it into one module, its C modules.
# Files that `import Shared` compile against an empty stand-in module: the Shared files they use are
# compiled into the target's own module instead (Shared as a whole needs swift-metrics and Prometheus).
declare -A dir sources cmods fuzzenv fuzzargs
dir[socket-frame]=SocketFrameFuzz
sources[socket-frame]="Sources/Shared/SocketProtocol/*.swift"
dir[json]=JSONFuzz
sources[json]="Sources/Shared/JSON/*.swift"
dir[config-yaml]=ConfigYAMLFuzz
sources[config-yaml]="Sources/Shared/Config/*.swift Sources/Shared/Lifecycle/ProcessIO.swift Sources/Shared/Text/*.swift
    Sources/Shared/JSON/JSONText.swift"
cmods[config-yaml]=CYAML
dir[routing-record]=RoutingRecordFuzz
sources[routing-record]="Sources/Shared/Routing/*.swift Sources/Shared/JSON/*.swift"
dir[http-request]=HTTPRequestFuzz
sources[http-request]="Sources/Gateway/HTTP/HTTPRequestParser.swift Sources/Gateway/HTTP/HTTPHeaders.swift
    Sources/Gateway/HTTP/HTTPRequest.swift Sources/Gateway/HTTP/HTTPMethod.swift"
cmods[http-request]=CHTTPParser
dir[avro-record]=AvroRecordFuzz
sources[avro-record]="Sources/Ingestor/Avro/*.swift Sources/Ingestor/Topology/Events.swift Sources/Shared/JSON/*.swift
    .build-fuzz/EmbeddedSchemas.swift"
cmods[avro-record]=CAvro
# avro-c allocates a string's declared length before reading it: as in production, an absurd length must
# fail that allocation (NULL → a decode error), not abort the fuzzer. LeakSanitizer scans unaligned words
# too: avro-c puts each value after a 4-byte refcount, so the pointers inside it are misaligned and the
# default scan misses them (false leaks; docs/security.md).
fuzzenv[avro-record]="ASAN_OPTIONS=allocator_may_return_null=1 LSAN_OPTIONS=use_unaligned=1"
fuzzargs[avro-record]="-malloc_limit_mb=1048576"
all=(socket-frame json config-yaml routing-record http-request avro-record)

if [[ "${1:-}" == "--list" ]]; then
    printf '%s\n' "${all[@]}"
    exit 0
fi
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all[@]}")
for t in "${targets[@]}"; do
    [[ -n "${dir[$t]:-}" ]] || { echo "fuzz: unknown target '$t' (scripts/fuzz.sh --list)" >&2; exit 2; }
done

mkdir -p "$out/modules"
# The stand-in Shared module and swift-log (the Avro sources log), built once.
if [[ ! -f "$out/modules/Shared.swiftmodule" ]]; then
    echo "// Empty: each fuzz target compiles the Shared files it needs." >"$out/SharedStub.swift"
    "$swiftc" -emit-module -parse-as-library -module-name Shared -emit-module-path "$out/modules/Shared.swiftmodule" \
        "$out/SharedStub.swift"
fi
# The ingestor embeds schemas/*.avsc with a build plugin; the fuzz target reads the files instead
# (K8S_MICRO_SCHEMA_DIR), so an empty table stands in for the generated one.
[[ -f "$out/EmbeddedSchemas.swift" ]] ||
    printf 'enum EmbeddedSchemas {\n    static let texts: [String: String] = [:]\n}\n' >"$out/EmbeddedSchemas.swift"
if [[ ! -f "$out/modules/libLogging.a" ]]; then
    log_src="$root/.build/checkouts/swift-log/Sources/Logging"
    [[ -d "$log_src" ]] || swift package resolve >/dev/null
    echo "fuzz: building swift-log"
    mapfile -t log_files < <(find "$log_src" -name '*.swift' | sort)
    "$swiftc" -emit-library -static -parse-as-library -module-name Logging -package-name swift_log -swift-version 5 \
        -O -emit-module -emit-module-path "$out/modules/Logging.swiftmodule" "${log_files[@]}" \
        -o "$out/modules/libLogging.a"
fi

build() {
    local t="$1" d="Tests/Fuzz/${dir[$1]}" bin="$out/$1/$1-fuzz"
    local files=()
    # shellcheck disable=SC2206  # the globs above are meant to expand here
    files=(${sources[$t]} "$d"/*.swift)
    local flags=(-I "$out/modules")
    for m in ${cmods[$t]:-}; do flags+=(-I "Sources/$m"); done
    [[ "$t" == avro-record ]] && flags+=(-L "$out/modules" -lLogging)
    # Rebuild only when a source or this script changed (the sanitized builds are slow).
    local stamp
    stamp="$(cat "${files[@]}" "$0" | sha1sum | cut -c1-16)$opt"
    if [[ -x "$bin" && "$(cat "$out/$t/stamp" 2>/dev/null)" == "$stamp" ]]; then return 0; fi
    mkdir -p "$out/$t"
    echo "fuzz: building $t (${#files[@]} files, $opt)"
    local started=$SECONDS
    "$swiftc" -sanitize=fuzzer,address -parse-as-library "$opt" -g -module-name "FuzzTarget" -package-name k8s_micro \
        -swift-version 6 -enable-upcoming-feature ExistentialAny "${flags[@]}" "${files[@]}" -o "$bin" 2>&1 |
        { grep -v "Cannot export local symbol '__asan" || true; }  # gold's noise about ASan's own symbols
    echo "$stamp" >"$out/$t/stamp"
    echo "fuzz: built $t in $((SECONDS - started)) s"
}

run() {
    local t="$1" d="Tests/Fuzz/${dir[$1]}" work="$out/$1"
    mkdir -p "$work/corpus"
    cp -n "$d"/corpus/* "$work/corpus"/ 2>/dev/null || true
    local log="$work/last-run.log" rc=0
    (
        cd "$work"
        export K8S_MICRO_SCHEMA_DIR="$root/schemas" SWIFT_BACKTRACE=enable=no
        read -r -a envs <<<"${fuzzenv[$t]:-}"
        [[ ${#envs[@]} -eq 0 ]] || export "${envs[@]}"
        read -r -a own <<<"${fuzzargs[$t]:-}"
        if compgen -G "$root/$d/regressions/*" >/dev/null; then
            "./$t-fuzz" "${own[@]}" "$root/$d"/regressions/* >"$work/regressions.log" 2>&1 ||
                { cat "$work/regressions.log"; exit 1; }
        fi
        "./$t-fuzz" corpus -max_total_time="$seconds" -rss_limit_mb=1024 -max_len=4096 -timeout=10 \
            -print_final_stats=1 -artifact_prefix="$work/" "${own[@]}" "${extra[@]}" >"$log" 2>&1
    ) || rc=$?
    local runs rate crashes
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    crashes=0
    if [[ $rc -ne 0 ]]; then
        crashes=1
        grep -E "ERROR: |Fatal error|Precondition failed|SUMMARY|Test unit written" "$log" "$work/regressions.log" \
            2>/dev/null | head -8 || true
    fi
    printf '%-16s %12s executions %8s exec/s %3s crashes\n' "$t" "${runs:-?}" "${rate:-?}" "$crashes"
    return "$rc"
}

for t in "${targets[@]}"; do build "$t"; done
failed=0
echo "fuzz: ${seconds} s per target"
for t in "${targets[@]}"; do run "$t" || failed=1; done
exit "$failed"
