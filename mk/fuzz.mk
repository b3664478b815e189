# libFuzzer targets for every parser of untrusted bytes (scripts/fuzz.sh; docs/security.md has the figures).
# make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="json avro-record"] [FUZZ_ARGS="-runs=10000000"]
.PHONY: fuzz

FUZZ_SECONDS ?= 60

fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh $(FUZZ_TARGETS)
