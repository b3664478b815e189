#!/usr/bin/env bash
# Front door #1: runs k8s-micro on an embedded default — a local tansu broker, the ingestor and the gateway
# as two processes sharing a socket directory like the pod, and a trickle of generated events.
# Ctrl-C or SIGTERM stops everything in order: generator, gateway, ingestor, then the broker.
#
# Knobs (environment):
#   K8S_MICRO_CONFIG=FILE     your config (a real Kafka): no local broker, no generator
#   BROKER_STORAGE=durable    the local broker keeps topics, records and offsets in run/durable across restarts
#                             (default memory: the broker forgets everything, so the stores start empty too)
#   BROKER_PORT=9092          port of the local broker (durable: its S3 store listens on BROKER_PORT+1000)
#   PARTITIONS=4              partitions of the input topic created on the local broker
#   RUN_DIR=run               logs, socket, state and the generated config
#   GENERATE_RATE=5           events per second of the demo generator (0: no generator)
# Any config key through its environment variable, e.g. GATEWAY_PORT=9080 GATEWAY_HEALTH_PORT=9079.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

CONFIG=${K8S_MICRO_CONFIG:-}
RUN_DIR=${RUN_DIR:-$PWD/run}
BROKER_PORT=${BROKER_PORT:-9092}
BROKER_STORAGE=${BROKER_STORAGE:-memory}
PARTITIONS=${PARTITIONS:-4}
GENERATE_RATE=${GENERATE_RATE:-5}
mkdir -p "$RUN_DIR/logs"

echo "run: building (debug)"
swift build --product k8s-micro-ingestor >/dev/null
swift build --product k8s-micro-gateway >/dev/null
BIN=$(swift build --show-bin-path)

GENERATOR_PID="" GATEWAY_PID="" INGESTOR_PID=""
# shellcheck disable=SC2317 # run from the traps
cleanup() {
  trap - INT TERM EXIT
  stop_in_order run "$GENERATOR_PID" "$GATEWAY_PID" "$INGESTOR_PID"
  exit "${1:-0}"
}
trap 'cleanup 0' INT TERM
trap 'cleanup $?' EXIT

if [ -z "$CONFIG" ]; then
  BOOTSTRAP="127.0.0.1:$BROKER_PORT"
  start_demo_broker run
  create_topic "$BOOTSTRAP" input "$PARTITIONS"
  CONFIG=$RUN_DIR/config.yaml
  write_dev_config "$CONFIG" "$BOOTSTRAP" "$STATE_ROOT"
else
  GENERATE_RATE=0
fi

# The ports and address the gateway will use: its own effective config (file, environment, defaults).
EFFECTIVE=$("$BIN/k8s-micro-gateway" --config "$CONFIG" --print-config) || exit 78
ADDRESS=$(config_value "$EFFECTIVE" gateway bindAddress)
[ "$ADDRESS" != 0.0.0.0 ] || ADDRESS=127.0.0.1
API=http://$ADDRESS:$(config_value "$EFFECTIVE" gateway port)$(config_value "$EFFECTIVE" gateway prefix)
HEALTH=http://$ADDRESS:$(config_value "$EFFECTIVE" gateway healthPort)

spawn "$RUN_DIR/logs/ingestor.log" "$BIN/k8s-micro-ingestor" run --config "$CONFIG"
INGESTOR_PID=$SPAWNED_PID
spawn "$RUN_DIR/logs/gateway.log" "$BIN/k8s-micro-gateway" --config "$CONFIG"
GATEWAY_PID=$SPAWNED_PID

WAIT_SECONDS=60 wait_for curl -fs "$HEALTH/hams/startup" || {
  echo "run: the gateway did not start on $HEALTH; see $RUN_DIR/logs/gateway.log" >&2
  exit 1
}
if WAIT_SECONDS=90 wait_for curl -fs "$HEALTH/hams/ready"; then
  STATE="k8s-micro is running"
  if [ "$GENERATE_RATE" != 0 ]; then
    spawn "$RUN_DIR/logs/generator.log" "$BIN/k8s-micro-ingestor" generate --config "$CONFIG" \
      --rate "$GENERATE_RATE" --keys 20 --duration 86400
    GENERATOR_PID=$SPAWNED_PID
  fi
else
  STATE="k8s-micro started but is NOT READY: $(curl -s "$HEALTH/hams/ready" || true)
The ingestor's last warnings ($RUN_DIR/logs/ingestor.log):
$(grep -E 'warning|error' "$RUN_DIR/logs/ingestor.log" | tail -n 3 || true)"
fi

cat <<MSG

$STATE (logs in $RUN_DIR/logs). Try:
  curl $API/hello
  curl -X POST $API/events -H 'content-type: application/json' \\
    -d '{"type":"com.polecatworks.chaser.Chaser","name":"A","id":"1","sent":1000,"ttl":300}'
  curl $API/chaser/1          # the aggregate of key 1 (a chaser's key is its id)
  curl $API/chaser            # keys of the chaser store
  curl $API/billing
  curl $HEALTH/hams/ready
  curl $HEALTH/hams/metrics
Ctrl-C stops everything.
MSG
# Any process ending on its own ends the run (the others are stopped).
set +e
wait -n "$INGESTOR_PID" "$GATEWAY_PID"
status=$?
for name in ingestor gateway; do
  pid_var=${name^^}_PID
  kill -0 "${!pid_var}" 2>/dev/null || echo "run: the $name exited (status $status); see $RUN_DIR/logs/$name.log" >&2
done
exit 1
