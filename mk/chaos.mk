# Chaos soak (not part of the test command): random broker, network and process faults against a continuous
# generator under exactly_once_v2, then every served aggregate and the output topics' last values compared with
# the reference model's computation from the input topic. Prints a table; exits 1 on any difference.
# make chaos [CHAOS_SECONDS=600] [CHAOS_SEED=n] [CHAOS_RATE=20 events/s]; docs/reliability.md has a recorded run.
.PHONY: chaos

CHAOS_SECONDS ?= 600
CHAOS_SEED ?=
CHAOS_RATE ?= 20

chaos:
	bash scripts/setup.sh
	. scripts/env.sh && swift build --product k8s-micro-ingestor && swift build --product k8s-micro-gateway
	. scripts/env.sh && .venv/bin/python mk/chaos.py --seconds $(CHAOS_SECONDS) --rate $(CHAOS_RATE) $(if $(CHAOS_SEED),--seed $(CHAOS_SEED))
