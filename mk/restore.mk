# Restart/restore benchmark: 1M distinct keys ingested, then warm restart (same state dir) and cold restore
# (wiped state dir) timed to serving, restore rate, peak RSS, store size (target: serving within 5 s).
# One run per RESTORE_KEYS entry (the restore-time-vs-keys picture).
# make bench-restore [RESTORE_KEYS="100000 300000 1000000"] [RESTORE_PARTITIONS=4]
.PHONY: bench-restore

RESTORE_KEYS ?= 100000 300000 1000000
RESTORE_PARTITIONS ?= 4

bench-restore:
	swift build -c release --product k8s-micro-ingestor
	. scripts/env.sh && for keys in $(RESTORE_KEYS); do .venv/bin/python mk/restore_bench.py --keys $$keys \
		--partitions $(RESTORE_PARTITIONS) --bin "$$(swift build -c release --show-bin-path)/k8s-micro-ingestor" \
		--json $(BENCH_DATA)/restore-$$keys.json || exit 1; done
