# Gateway benchmark: wrk against gateway + ingestor + tansu with nginx as the ceiling (return 200 with unlimited
# keep-alive; the static file with default keep-alive beside it), and gateway RSS.
# make bench-gateway [BENCH_GW_KEYS=1000] [BENCH_GW_SECONDS=10]
.PHONY: bench-gateway bench-socket bench-query-load

BENCH_GW_KEYS ?= 1000
BENCH_GW_SECONDS ?= 10

bench-gateway:
	swift build -c release --product k8s-micro-ingestor
	swift build -c release --product k8s-micro-gateway
	. scripts/env.sh && python3 mk/gateway_bench.py --bin "$$(swift build -c release --show-bin-path)" \
		--keys $(BENCH_GW_KEYS) --seconds $(BENCH_GW_SECONDS) --json $(BENCH_DATA)/gateway.json

# Socket round trips with 1, 16 and 64 requests in flight (in-memory handler, release build).
bench-socket:
	swift build -c release --product k8s-micro-ingestor
	"$$(swift build -c release --show-bin-path)/k8s-micro-ingestor" bench-socket

# Queries never block consumption: ingest rate with and without 10k socket gets/s (issue 4).
bench-query-load:
	swift build -c release --product k8s-micro-ingestor
	. scripts/env.sh && python3 mk/query_load_bench.py --bin "$$(swift build -c release --show-bin-path)/k8s-micro-ingestor" \
		--events $(or $(BENCH_EVENTS),300000)
