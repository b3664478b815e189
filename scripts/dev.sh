#!/usr/bin/env bash
# Development mode: like scripts/run.sh, but each process is rebuilt and restarted when its sources change
# (apt `entr`). Gateway sources restart only the gateway: the ingestor keeps its state and keeps consuming.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

RUN_DIR=${RUN_DIR:-$PWD/run}
BROKER_PORT=${BROKER_PORT:-9092}
mkdir -p "$RUN_DIR/sock" "$RUN_DIR/state" "$RUN_DIR/logs"
BOOTSTRAP="127.0.0.1:$BROKER_PORT"
CONFIG=$RUN_DIR/config.yaml

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  if [ -n "${BROKER_PID:-}" ]; then kill "$BROKER_PID" 2>/dev/null || true; fi
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

port_open 127.0.0.1 "$BROKER_PORT" || start_broker 127.0.0.1 "$BROKER_PORT" "$RUN_DIR/logs/broker.log"
create_topic "$BOOTSTRAP" input 4
write_dev_config "$CONFIG" "$BOOTSTRAP" "$RUN_DIR"
BIN=$(swift build --show-bin-path)

# watch NAME PRODUCT ARGS...: entr -r rebuilds PRODUCT and restarts it whenever a watched source changes.
watch() {
  local name=$1 product=$2 dirs=$3; shift 3
  # shellcheck disable=SC2086 # $dirs is a list of folders
  while true; do
    find $dirs -name '*.swift' -o -name '*.h' -o -name '*.modulemap' | \
      entr -dnr sh -c "swift build --product $product 2>&1 | tail -n 3 && echo '[$name] restarted' && exec $BIN/$product $*"
  done 2>&1 | sed -u "s/^/[$name] /" &
  pids+=($!)
}

watch ingestor k8s-micro-ingestor "Sources/Ingestor Sources/Shared" run --config "$CONFIG"
watch gateway k8s-micro-gateway "Sources/Gateway Sources/Shared" --config "$CONFIG"
echo "dev: watching sources; API http://127.0.0.1:8080, health http://127.0.0.1:8079. Ctrl-C stops."
wait
