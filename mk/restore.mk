# Restart/restore benchmark: 1M distinct keys ingested, then warm restart (same state dir) and cold restore
# (wiped state dir) timed to serving, restore rate, peak RSS, store size (target: serving within 5 s).
# make bench-restore [RESTORE_KEYS=1000000] [RESTORE_PARTITIONS=4]
.PHONY: bench-restore

RESTORE_KEYS ?= 1000000
RESTORE_PARTITIONS ?= 4

bench-restore:
	swift build -c release --product k8s-micro-ingestor
	. scripts/env.sh && .venv/bin/python mk/restore_bench.py --keys $(RESTORE_KEYS) \
		--partitions $(RESTORE_PARTITIONS) --bin "$$(swift build -c release --show-bin-path)/k8s-micro-ingestor"
