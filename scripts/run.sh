#!/usr/bin/env bash
# Front door #1: runs k8s-micro on an embedded default — a local tansu broker, the ingestor and the gateway
# as two processes sharing a socket directory like the pod, and a trickle of generated events. Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

CONFIG=${K8S_MICRO_CONFIG:-}
RUN_DIR=${RUN_DIR:-$PWD/run}
BROKER_PORT=${BROKER_PORT:-9092}
PARTITIONS=${PARTITIONS:-4}
mkdir -p "$RUN_DIR/sock" "$RUN_DIR/state" "$RUN_DIR/logs"

echo "run: building (debug)"
swift build --product k8s-micro-ingestor >/dev/null
swift build --product k8s-micro-gateway >/dev/null
BIN=$(swift build --show-bin-path)

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "run: stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "${BROKER_PID:-}" ] && kill "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null
  echo "run: stopped"
}
trap cleanup INT TERM EXIT

if [ -z "$CONFIG" ]; then
  BOOTSTRAP="127.0.0.1:$BROKER_PORT"
  if port_open 127.0.0.1 "$BROKER_PORT"; then
    echo "run: a broker already listens on $BOOTSTRAP; using it"
  else
    echo "run: starting tansu on $BOOTSTRAP (log $RUN_DIR/logs/broker.log)"
    start_broker 127.0.0.1 "$BROKER_PORT" "$RUN_DIR/logs/broker.log"
  fi
  create_topic "$BOOTSTRAP" input "$PARTITIONS"
  CONFIG=$RUN_DIR/config.yaml
  write_dev_config "$CONFIG" "$BOOTSTRAP" "$RUN_DIR"
fi

"$BIN/k8s-micro-ingestor" run --config "$CONFIG" >>"$RUN_DIR/logs/ingestor.log" 2>&1 &
pids+=($!)
"$BIN/k8s-micro-gateway" --config "$CONFIG" >>"$RUN_DIR/logs/gateway.log" 2>&1 &
pids+=($!)

API=http://127.0.0.1:${GATEWAY_PORT:-8080}
HEALTH=http://127.0.0.1:${HEALTH_PORT:-8079}
WAIT_SECONDS=60 wait_for curl -fs "$HEALTH/hams/startup" || { echo "gateway did not start; see $RUN_DIR/logs" >&2; exit 1; }
if WAIT_SECONDS=60 wait_for curl -fs "$HEALTH/hams/ready"; then
  "$BIN/k8s-micro-ingestor" generate --config "$CONFIG" --rate 5 --keys 20 --duration 86400 \
    >>"$RUN_DIR/logs/generator.log" 2>&1 &
  pids+=($!)
else
  echo "run: ingestor not ready yet; no generator started (see $RUN_DIR/logs/ingestor.log)" >&2
fi

cat <<MSG

k8s-micro is running (logs in $RUN_DIR/logs). Try:
  curl $API/hello
  curl $API/chaser            # keys of the chaser store
  curl $API/chaser/<key>      # one aggregate
  curl $API/billing
  curl -X POST $API/events -H 'content-type: application/json' -d '{"type":"com.polecatworks.chaser.Chaser","name":"A","id":"1","sent":1000,"ttl":300}'
  curl $HEALTH/hams/ready
  curl $HEALTH/hams/metrics
Ctrl-C stops everything.
MSG
wait -n "${pids[@]}" || true
echo "run: a process exited; see $RUN_DIR/logs" >&2
