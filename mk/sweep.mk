# Key-count sweep of the ingestor: 10k, 100k and 1M keys, raw consume ceiling and both guarantees per key count.
# make bench-sweep [SWEEP_KEYS=10000,100000,1000000] [SWEEP_EVENTS=1000000,1000000,5000000] [BENCH_PARTITIONS=4]
# Events default to 5 per key (at least 1M). tansu keeps every record in memory: 5M input events plus their
# output and changelog records need several GB of free memory.
.PHONY: bench-sweep

SWEEP_KEYS ?= 10000,100000,1000000
SWEEP_EVENTS ?=
BENCH_PARTITIONS ?= 4

bench-sweep:
	swift build -c release --product k8s-micro-ingestor
	. scripts/env.sh && python3 mk/ingestor_sweep.py --keys $(SWEEP_KEYS) $(if $(SWEEP_EVENTS),--events $(SWEEP_EVENTS)) \
		--partitions $(BENCH_PARTITIONS) --bin "$$(swift build -c release --show-bin-path)/k8s-micro-ingestor" \
		--json $(BENCH_DATA)/sweep.json
