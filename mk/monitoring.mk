# Monitoring shipped with the chart: the Grafana dashboard (as code) and the alerts' tests.
#   make dashboard        regenerate charts/k8s-micro/dashboards/k8s-micro.json from dashboard.py
#   make monitoring-test  promtool checks and a real Prometheus scraping a pod (Tests/Integration/test_prometheus.py)
.PHONY: dashboard monitoring-test

dashboard:
	.venv/bin/python charts/k8s-micro/dashboards/dashboard.py

monitoring-test:
	.venv/bin/python -m pytest Tests/Integration/test_prometheus.py -q -p no:cacheprovider
