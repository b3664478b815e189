# Developer shortcuts; the README's two front-door commands are scripts/run.sh and scripts/test.sh.
SHELL := /bin/bash
.PHONY: run test unit lint format dev bench clean setup

setup:
	bash scripts/setup.sh

run:
	bash scripts/run.sh

test:
	bash scripts/test.sh

unit:
	swift build --build-tests && swift test --skip-build

lint:
	swift format lint --strict -r Sources Tests Package.swift Plugins
	shellcheck -x scripts/*.sh .ci/run

format:
	swift format -i -r Sources Tests Package.swift Plugins

# Rebuilds and restarts a process when its sources change; the gateway restarts alone.
dev:
	bash scripts/dev.sh

# Every benchmark, each printing its figures (release builds; several minutes), then the pictures
# (docs/bench/*.png). docs/benchmarks.md has results. `make bench-peers` compares with Quix Streams.
bench: bench-socket bench-query-load bench-gateway bench-forwarding bench-ingestor bench-restore
	$(MAKE) bench-plots

clean:
	rm -rf .build .build-fuzz run

-include mk/*.mk
