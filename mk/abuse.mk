# Connection abuse: the well-behaved client's latency and the gateway's RSS during each attack (release build).
# make bench-abuse [BENCH_ABUSE_SECONDS=10] [BENCH_ABUSE_IDLE=10000]
.PHONY: bench-abuse

BENCH_ABUSE_SECONDS ?= 10
BENCH_ABUSE_IDLE ?= 10000

bench-abuse:
	swift build -c release --product k8s-micro-gateway
	. scripts/env.sh && python3 mk/abuse_bench.py --bin "$$(swift build -c release --show-bin-path)/k8s-micro-gateway" \
		--seconds $(BENCH_ABUSE_SECONDS) --idle $(BENCH_ABUSE_IDLE)
