# shellcheck shell=bash
# Sourced by scripts: the run-time environment of this checkout (librdkafka >= 2.2, tansu, venv tools).
K8S_MICRO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export K8S_MICRO_ROOT
export LD_LIBRARY_PATH="$K8S_MICRO_ROOT/.venv/rdkafka${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$K8S_MICRO_ROOT/.venv/bin:$PATH"
