# shellcheck shell=bash
# Sourced by scripts: start a local tansu broker (in memory or durable), create topics, write the demo config,
# start and stop processes in order, wait for them.
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

# spawn LOGFILE CMD...: CMD in the background in a session of its own, so a terminal's Ctrl-C reaches only the
# script, which then stops everything in order. Sets SPAWNED_PID (the command's own pid: the script has no job
# control, so its children never lead a process group and setsid(1) execs in place without forking).
spawn() {
  local log=$1; shift
  setsid "$@" >>"$log" 2>&1 </dev/null &
  SPAWNED_PID=$!
}

# stop_pid PID [SECONDS]: SIGTERM to PID and the rest of its process group (spawn made PID its leader), wait up
# to SECONDS (default 20) for all of them, then SIGKILL. Returns once they are gone.
stop_pid() {
  local pid=$1 deadline=$((SECONDS + ${2:-20}))
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || return 0
  while group_alive "$pid"; do
    if [ $SECONDS -ge $deadline ]; then
      echo "stop: process group $pid ignored SIGTERM for ${2:-20} s; killing it" >&2
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    sleep 0.1
  done
  wait "$pid" 2>/dev/null || true
}

# group_alive PGID: some process of the group is still running (zombies do not count).
group_alive() {
  ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}

# start_broker HOST PORT LOGFILE [DATADIR]: tansu in the background; sets BROKER_PID.
# Without DATADIR the broker keeps everything in memory and forgets it when stopped. With DATADIR it is durable:
# localbucket (a small S3 server; scripts/s3server.py adds the conditional writes tansu needs) serves DATADIR/s3 on BUCKET_PORT (default PORT+1000) and tansu keeps topics,
# records and group offsets there, so they survive a broker restart; sets BUCKET_PID too.
start_broker() {
  local host=$1 port=$2 log=$3 data=${4:-}
  local args=(broker --listener-url "tcp://$host:$port" --advertised-listener-url "tcp://$host:$port")
  if [ -n "$data" ]; then
    local bucket_port=${BUCKET_PORT:-$((port + 1000))}
    mkdir -p "$data/s3"
    spawn "${log%.log}-s3.log" python "$K8S_MICRO_ROOT/scripts/s3server.py" --host "$host" --port "$bucket_port" "$data/s3"
    BUCKET_PID=$SPAWNED_PID
    WAIT_SECONDS=20 wait_for port_open "$host" "$bucket_port" || {
      echo "localbucket did not start, see ${log%.log}-s3.log" >&2
      return 1
    }
    # tansu needs its bucket to exist; creating an existing one is harmless.
    curl -fsS -X PUT "http://$host:$bucket_port/tansu" >/dev/null 2>&1 || [ -d "$data/s3/tansu" ] || {
      echo "cannot create the bucket tansu on localbucket $host:$bucket_port" >&2
      return 1
    }
    args+=(--storage-engine s3://tansu/)
    spawn "$log" env AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=y AWS_DEFAULT_REGION=us-east-1 \
      AWS_ENDPOINT="http://$host:$bucket_port" AWS_ALLOW_HTTP=true tansu "${args[@]}"
  else
    spawn "$log" tansu "${args[@]}"
  fi
  BROKER_PID=$SPAWNED_PID  # read by the caller
  export BROKER_PID BUCKET_PID
  WAIT_SECONDS=20 wait_for port_open "$host" "$port" || { echo "broker did not start, see $log" >&2; return 1; }
}

# stop_broker: the broker, then its storage (the last things a script stops).
stop_broker() {
  if [ -n "${BROKER_PID:-}" ]; then stop_pid "$BROKER_PID" 10; fi
  if [ -n "${BUCKET_PID:-}" ]; then stop_pid "$BUCKET_PID" 10; fi
  BROKER_PID="" BUCKET_PID=""
}

# start_demo_broker NAME: the local broker of run.sh and dev.sh, from RUN_DIR, BROKER_PORT and BROKER_STORAGE
# (memory|durable); an already listening broker is used as it is. Sets STATE_ROOT, the folder of the
# ingestor's socket and stores: the memory broker starts empty, so the stores start empty too.
start_demo_broker() {
  local name=$1
  STATE_ROOT=$RUN_DIR
  case "$BROKER_STORAGE" in
    memory | durable) ;;
    *) echo "$name: BROKER_STORAGE must be memory or durable, got \"$BROKER_STORAGE\"" >&2; return 64 ;;
  esac
  if port_open 127.0.0.1 "$BROKER_PORT"; then
    echo "$name: a broker already listens on 127.0.0.1:$BROKER_PORT; using it and keeping $RUN_DIR/state"
  elif [ "$BROKER_STORAGE" = durable ]; then
    STATE_ROOT=$RUN_DIR/durable
    echo "$name: starting a durable tansu on 127.0.0.1:$BROKER_PORT, data in $STATE_ROOT" \
      "(log $RUN_DIR/logs/broker.log)"
    start_broker 127.0.0.1 "$BROKER_PORT" "$RUN_DIR/logs/broker.log" "$STATE_ROOT"
  else
    # Stores kept from an earlier run would be ahead of the new, empty broker and only be wiped and restored.
    echo "$name: starting tansu in memory on 127.0.0.1:$BROKER_PORT; it starts empty, so $RUN_DIR/state" \
      "starts empty too (BROKER_STORAGE=durable keeps both across restarts)"
    rm -rf "$RUN_DIR/state"
    start_broker 127.0.0.1 "$BROKER_PORT" "$RUN_DIR/logs/broker.log"
  fi
  mkdir -p "$STATE_ROOT/sock" "$STATE_ROOT/state"
}

# stop_in_order NAME PID...: stops each process group in the order given (the generator, the gateway, then the
# ingestor, which commits and leaves its group while the broker is still up), then the broker and its storage.
stop_in_order() {
  local name=$1; shift
  echo; echo "$name: stopping"
  for pid in "$@"; do
    if [ -n "$pid" ]; then stop_pid "$pid" 30; fi
  done
  stop_broker
  echo "$name: stopped"
}

# create_topic BROKER NAME PARTITIONS [CONFIG]: creates the topic; an existing one is left as it is.
create_topic() {
  local args=(topic create --broker "tcp://$1" --partitions "$3" "$2")
  [ -n "${4:-}" ] && args+=(--config "$4")
  tansu "${args[@]}" >/dev/null 2>&1 || true
}

# config_value PRINTED SECTION KEY: a scalar of --print-config output (two-level keys), quotes removed.
config_value() {
  awk -v section="$2:" -v key="  $3:" '
    /^[^ ]/ { inside = ($0 == section) }
    inside && index($0, key) == 1 { v = substr($0, length(key) + 2); gsub(/^"|"$/, "", v); print v; exit }
  ' <<<"$1"
}

# write_dev_config FILE BOOTSTRAP RUNDIR: the embedded default config of the demo and dev mode. Ports and
# every other key keep their defaults here, so the documented environment variables (GATEWAY_PORT,
# GATEWAY_HEALTH_PORT, ...) and --set change them as they change any config.
write_dev_config() {
  cat >"$1" <<YAML
log:
  level: info
kafka:
  bootstrapServers: $2
  processingGuarantee: exactly_once_v2
  properties:
    # tansu holds a JoinGroup for half of session.timeout.ms: short timeouts keep joins and rebalances quick.
    session.timeout.ms: 6000
    heartbeat.interval.ms: 1000
ingestor:
  socket: $3/sock/ingestor.sock
  stateDir: $3/state
gateway:
  bindAddress: 127.0.0.1
YAML
}
