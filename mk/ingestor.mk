# Ingestor benchmark: pre-produce events to a fresh tansu, then measure ingest rate and peak RSS per guarantee.
# make bench-ingestor [BENCH_EVENTS=1000000] [BENCH_KEYS=10000] [BENCH_PARTITIONS=4]
.PHONY: bench-ingestor

BENCH_EVENTS ?= 1000000
BENCH_KEYS ?= 10000
BENCH_PARTITIONS ?= 4

bench-ingestor:
	swift build -c release --product k8s-micro-ingestor
	. scripts/env.sh && python3 mk/ingestor_bench.py --events $(BENCH_EVENTS) --keys $(BENCH_KEYS) \
		--partitions $(BENCH_PARTITIONS) --bin "$$(swift build -c release --show-bin-path)/k8s-micro-ingestor" \
		--json $(BENCH_DATA)/ingestor.json
