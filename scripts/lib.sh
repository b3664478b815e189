# shellcheck shell=bash
# Sourced by scripts: start a local tansu broker, create topics, start the pod's two processes, wait for them.
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# wait_for CMD... : retry a command for up to $WAIT_SECONDS (default 30) seconds.
wait_for() {
  local deadline=$((SECONDS + ${WAIT_SECONDS:-30}))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# start_broker HOST PORT LOGFILE: memory-storage tansu in the background; sets BROKER_PID.
start_broker() {
  local host=$1 port=$2 log=$3
  tansu broker --listener-url "tcp://$host:$port" --advertised-listener-url "tcp://$host:$port" >"$log" 2>&1 &
  BROKER_PID=$!  # read by the caller
  export BROKER_PID
  WAIT_SECONDS=20 wait_for port_open "$host" "$port" || { echo "broker did not start, see $log" >&2; return 1; }
}

# create_topic BROKER NAME PARTITIONS [CONFIG]: idempotent enough for a fresh broker.
create_topic() {
  local args=(topic create --broker "tcp://$1" --partitions "$3" "$2")
  [ -n "${4:-}" ] && args+=(--config "$4")
  tansu "${args[@]}" >/dev/null 2>&1 || true
}

# write_dev_config FILE BOOTSTRAP RUNDIR: the embedded default config of the demo and dev mode.
write_dev_config() {
  cat >"$1" <<YAML
log:
  level: info
kafka:
  bootstrapServers: $2
  processingGuarantee: exactly_once_v2
  properties:
    # tansu holds JoinGroup for session.timeout.ms / 2 (PLATFORM-NOTES).
    session.timeout.ms: 6000
    heartbeat.interval.ms: 1000
ingestor:
  socket: $3/sock/ingestor.sock
  stateDir: $3/state
  schemaDir: $K8S_MICRO_ROOT/schemas
gateway:
  bindAddress: 127.0.0.1
  port: ${GATEWAY_PORT:-8080}
  healthPort: ${HEALTH_PORT:-8079}
YAML
}
