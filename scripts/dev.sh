#!/usr/bin/env bash
# Development mode: like scripts/run.sh (local broker, both processes, a trickle of generated events), but each
# process is rebuilt and restarted when its sources change (apt `entr`). Gateway sources restart only the
# gateway: the ingestor keeps its state and keeps consuming. Ctrl-C or SIGTERM stops everything in order.
# Knobs as run.sh: BROKER_PORT, RUN_DIR, GENERATE_RATE, BROKER_STORAGE, and any config key's environment variable.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

RUN_DIR=${RUN_DIR:-$PWD/run}
BROKER_PORT=${BROKER_PORT:-9092}
BROKER_STORAGE=${BROKER_STORAGE:-memory}
GENERATE_RATE=${GENERATE_RATE:-5}
BOOTSTRAP="127.0.0.1:$BROKER_PORT"
CONFIG=$RUN_DIR/config.yaml
mkdir -p "$RUN_DIR/logs"

GENERATOR_PID="" GATEWAY_PID="" INGESTOR_PID=""
# shellcheck disable=SC2317 # run from the traps
cleanup() {
  trap - INT TERM EXIT
  # Each watcher is a process group (loop, entr, build, binary): stopping the group stops all of it.
  stop_in_order dev "$GENERATOR_PID" "$GATEWAY_PID" "$INGESTOR_PID"
  exit 0
}
trap cleanup INT TERM EXIT

start_demo_broker dev
create_topic "$BOOTSTRAP" input 4
write_dev_config "$CONFIG" "$BOOTSTRAP" "$STATE_ROOT"
echo "dev: building (debug)"
swift build --product k8s-micro-ingestor >/dev/null
swift build --product k8s-micro-gateway >/dev/null
BIN=$(swift build --show-bin-path)

# watch NAME PRODUCT DIRS ARGS...: rebuilds PRODUCT and restarts it whenever a source under DIRS changes (entr
# exits when a file is added, so the loop starts it again with the new list). Sets SPAWNED_PID, the group.
watch() {
  local name=$1 product=$2 dirs=$3; shift 3
  # shellcheck disable=SC2016 # expanded by the inner shell
  spawn /dev/stdout bash -c '
    name=$1 product=$2 dirs=$3 bin=$4; shift 4
    while true; do
      # shellcheck disable=SC2086
      find $dirs -name "*.swift" -o -name "*.h" -o -name "*.modulemap" |
        entr -dnr sh -c "swift build --product $product 2>&1 | tail -n 3 && echo restarted && exec $bin/$product $*"
      sleep 0.5
    done 2>&1 | sed -u "s/^/[$name] /"' watch "$name" "$product" "$dirs" "$BIN" "$@"
}

watch ingestor k8s-micro-ingestor "Sources/Ingestor Sources/Shared" run --config "$CONFIG"
INGESTOR_PID=$SPAWNED_PID
watch gateway k8s-micro-gateway "Sources/Gateway Sources/Shared" --config "$CONFIG"
GATEWAY_PID=$SPAWNED_PID

EFFECTIVE=$("$BIN/k8s-micro-gateway" --config "$CONFIG" --print-config) || exit 78
HEALTH=http://127.0.0.1:$(config_value "$EFFECTIVE" gateway healthPort)
API=http://127.0.0.1:$(config_value "$EFFECTIVE" gateway port)$(config_value "$EFFECTIVE" gateway prefix)
echo "dev: watching sources; API $API, health $HEALTH. Ctrl-C stops."
if [ "$GENERATE_RATE" != 0 ] && WAIT_SECONDS=300 wait_for curl -fs "$HEALTH/hams/ready"; then
  spawn "$RUN_DIR/logs/generator.log" "$BIN/k8s-micro-ingestor" generate --config "$CONFIG" \
    --rate "$GENERATE_RATE" --keys 20 --duration 86400
  GENERATOR_PID=$SPAWNED_PID
  echo "dev: generating $GENERATE_RATE events/s (log $RUN_DIR/logs/generator.log)"
fi
wait
