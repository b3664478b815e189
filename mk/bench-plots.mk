# Benchmark pictures: the bench scripts write JSON to $(BENCH_DATA); bench_plots.py draws docs/bench/*.png
# (embedded in docs/benchmarks.md). `make bench` ends with it; alone it redraws from the JSON present (figures
# recorded in docs/bench/data/recorded.json where no fresh run exists, labelled so).
.PHONY: bench-plots

BENCH_DATA ?= docs/bench/data

bench-plots:
	.venv/bin/python -c 'import matplotlib' 2>/dev/null || .venv/bin/pip install -q --disable-pip-version-check matplotlib
	MPLBACKEND=Agg .venv/bin/python mk/bench_plots.py --data $(BENCH_DATA)
