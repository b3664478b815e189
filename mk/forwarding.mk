# Forwarding benchmark: two pods (127.0.0.2/.3, one tansu), wrk through pod A's gateway on A's key and B's key.
# make bench-forwarding [FWD_SECONDS=10] [FWD_CONNECTIONS=50]
.PHONY: bench-forwarding

FWD_SECONDS ?= 10
FWD_CONNECTIONS ?= 50

bench-forwarding:
	swift build -c release --product k8s-micro-ingestor
	swift build -c release --product k8s-micro-gateway
	. scripts/env.sh && .venv/bin/python mk/forwarding_bench.py --seconds $(FWD_SECONDS) \
		--connections $(FWD_CONNECTIONS) --bin "$$(swift build -c release --show-bin-path)"
