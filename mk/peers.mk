# Peers benchmark: the same chaser workload (same broker, same input, same output check) on k8s-micro and on
# Quix Streams, then the pictures. Quix Streams lives in its own venv (.venv-peers), made here.
# make bench-peers [PEERS_EVENTS=1000000] [PEERS_KEYS=10000] [PEERS_PARTITIONS=4] [PEERS_GUARANTEE=at_least_once]
.PHONY: bench-peers

PEERS_EVENTS ?= 1000000
PEERS_KEYS ?= 10000
PEERS_PARTITIONS ?= 4
PEERS_GUARANTEE ?= at_least_once
QUIXSTREAMS_VERSION ?= 3.28.1

.venv-peers/.stamp: mk/peers.mk
	[ -x .venv-peers/bin/python ] || python3 -m venv .venv-peers
	.venv-peers/bin/pip install -q --disable-pip-version-check quixstreams==$(QUIXSTREAMS_VERSION) fastavro
	touch $@

bench-peers: .venv-peers/.stamp
	swift build -c release --product k8s-micro-ingestor
	. scripts/env.sh && .venv-peers/bin/python mk/peers_bench.py --events $(PEERS_EVENTS) --keys $(PEERS_KEYS) \
		--partitions $(PEERS_PARTITIONS) --guarantee $(PEERS_GUARANTEE) --json $(BENCH_DATA)/peers.json \
		--bin "$$(swift build -c release --show-bin-path)/k8s-micro-ingestor"
	$(MAKE) bench-plots
