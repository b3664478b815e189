#!/usr/bin/env bash
# Pod emulator: runs one pod's two processes exactly as the chart does (same arguments, downward-API
# environment, one config file, a shared socket directory), bound to a loopback address such as 127.0.0.2.
# Usage: scripts/pod.sh HOST BOOTSTRAP [DIR]   e.g.  scripts/pod.sh 127.0.0.3 127.0.0.1:9092
# Several pods on one machine: same ports, different loopback addresses. Ctrl-C (or SIGTERM) stops the pod.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

HOST=${1:?usage: scripts/pod.sh HOST BOOTSTRAP [DIR]}
BOOTSTRAP=${2:?usage: scripts/pod.sh HOST BOOTSTRAP [DIR]}
DIR=${3:-$PWD/run/pod-$HOST}
BIN=${BIN:-$(swift build --show-bin-path)}
mkdir -p "$DIR/sock" "$DIR/state" "$DIR/secrets"

# The chart mounts config.yaml from the ConfigMap and the secrets volume; mirror both.
write_dev_config "$DIR/config.yaml" "$BOOTSTRAP" "$DIR"
sed -i "s/^  bindAddress: .*/  bindAddress: $HOST/" "$DIR/config.yaml"

export POD_NAME="pod-$HOST" POD_NAMESPACE=default POD_IP="$HOST"
args=(--config "$DIR/config.yaml" --secrets "$DIR/secrets")

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

"$BIN/k8s-micro-ingestor" run "${args[@]}" >>"$DIR/ingestor.log" 2>&1 &
pids+=($!)
"$BIN/k8s-micro-gateway" "${args[@]}" >>"$DIR/gateway.log" 2>&1 &
pids+=($!)
echo "pod $POD_NAME: API http://$HOST:${GATEWAY_PORT:-8080}, health http://$HOST:${GATEWAY_HEALTH_PORT:-8079}, logs in $DIR"
wait -n "${pids[@]}" || true
