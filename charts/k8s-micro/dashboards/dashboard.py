#!/usr/bin/env python3
"""The k8s-micro Grafana dashboard as code (grafana-foundation-sdk); writes k8s-micro.json beside this file.

    make dashboard            # regenerate after editing (the chart ships the JSON, not this file)

Queries read the series scraped from /hams/metrics; a scrape through the chart's PodMonitor (or the usual
annotation-based kubernetes_sd relabelling) adds `namespace` and `pod`, which the variables select.
Tests/Integration/test_prometheus.py evaluates every `expr` against a real Prometheus.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, DataSourceRef, VariableRefresh, VariableSort

OUT = Path(__file__).with_name("k8s-micro.json")
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
SEL = 'namespace="$namespace", pod=~"$pod"'
RATE = "$__rate_interval"
_ids = itertools.count(1)  # panel ids, unique within the dashboard (reset by build)


def q(expr: str, legend: str = "", ref: str = "A") -> prometheus.Dataquery:
    out = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DS)
    return out.legend_format(legend) if legend else out


def series(title: str, unit: str, *queries: prometheus.Dataquery, description: str = "", w: int = 12,
           stack: bool = False) -> timeseries.Panel:
    p = (timeseries.Panel().id(next(_ids)).title(title).unit(unit).datasource(DS).span(w).height(8).fill_opacity(10)
         .legend(cb.VizLegendOptions().display_mode(common.LegendDisplayMode.TABLE)
                 .placement(common.LegendPlacement.BOTTOM).show_legend(True).calcs(["lastNotNull", "max"])))
    if stack:
        p = p.stacking(cb.StackingConfig().mode(common.StackingMode.NORMAL))
    for i, query in enumerate(queries):
        p = p.with_target(query.ref_id(chr(ord("A") + i)))
    return p.description(description) if description else p


def single(title: str, unit: str, expr: str, description: str) -> stat.Panel:
    return (stat.Panel().id(next(_ids)).title(title).unit(unit).datasource(DS).span(4).height(4)
            .description(description).graph_mode(common.BigValueGraphMode.AREA)
            .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"])).with_target(q(expr)))


def row(title: str) -> db.Row:
    return db.Row(title).id(next(_ids))


def histogram_quantile(phi: float, metric: str, by: str) -> str:
    return f"histogram_quantile({phi}, sum by (le, {by}) (rate({metric}_bucket{{{SEL}}}[{RATE}])))"


def build() -> db.Dashboard:
    global _ids
    _ids = itertools.count(1)
    d = (db.Dashboard("k8s-micro").uid("k8s-micro").tags(["k8s-micro", "kafka"]).editable().refresh("30s")
         .time("now-1h", "now").tooltip(DashboardCursorSync.CROSSHAIR)
         .description("Ingest, state, API and resources of the k8s-micro pods (charts/k8s-micro/dashboards)."))
    d = d.with_variable(db.DatasourceVariable("datasource").label("Data source").type("prometheus"))
    d = d.with_variable(db.QueryVariable("namespace").label("Namespace").datasource(DS)
                        .query("label_values(records_consumed_total, namespace)")
                        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(VariableSort.ALPHABETICAL_ASC))
    d = d.with_variable(db.QueryVariable("pod").label("Pod").datasource(DS)
                        .query('label_values(records_consumed_total{namespace="$namespace"}, pod)')
                        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(VariableSort.ALPHABETICAL_ASC)
                        .multi(True).include_all(True).all_value(".*"))

    # The guarantee is a label of the commit latency only: join it onto the pod's consume rate.
    guarantee = f"group by (namespace, pod, guarantee) (commit_latency_seconds_count{{{SEL}}})"
    d = d.with_row(row("Overview"))
    d = d.with_panel(single("Events/s", "ops", f"sum(rate(records_consumed_total{{{SEL}}}[{RATE}]))",
                            "Records consumed from the input topic per second, all pods."))
    d = d.with_panel(single("Consumer lag", "short", f"sum(kafka_consumer_lag{{{SEL}}})",
                            "Records in the input topic not yet handed to the stream threads, all partitions."))
    d = d.with_panel(single("Ready ingestors", "short", f"sum(gateway_ingestor_connected{{{SEL}}})",
                            "Gateways connected to their ingestor over the socket."))
    d = d.with_panel(single("Partitions restoring", "short", f"sum(partitions_restoring{{{SEL}}})",
                            "Partitions whose store is being restored (their keys answer 503)."))
    d = d.with_panel(single("Store keys", "short", f"sum(store_keys{{{SEL}}})",
                            "Keys in the chaser and billing stores, all pods."))
    d = d.with_panel(single("API 5xx share", "percentunit",
                            f'sum(rate(http_requests_total{{{SEL}, status=~"5.."}}[{RATE}]))'
                            f" / sum(rate(http_requests_total{{{SEL}}}[{RATE}]))",
                            "Share of API answers that are server errors (503 while restoring or rebalancing)."))

    d = d.with_row(row("Ingest"))
    d = d.with_panel(series(
        "Ingest rate per guarantee", "ops",
        q(f"sum by (guarantee) (rate(records_consumed_total{{{SEL}}}[{RATE}])"
          f" * on (namespace, pod) group_left (guarantee) {guarantee})", "{{guarantee}}"),
        q(f"sum by (pod) (rate(records_consumed_total{{{SEL}}}[{RATE}]))", "consumed {{pod}}"),
        description="Records consumed per second, by processing guarantee and by pod."))
    d = d.with_panel(series(
        "Consumer lag per partition", "short",
        q(f"max by (topic, partition) (kafka_consumer_lag{{{SEL}}})", "{{topic}}/{{partition}}"),
        description="End of the log (last stable offset or high watermark) minus the position handed to the "
                    "stream thread; from librdkafka's statistics every 5 s (0 on pods not owning the partition)."))
    d = d.with_panel(series(
        "Records produced per topic", "ops",
        q(f"sum by (topic) (rate(records_produced_total{{{SEL}}}[{RATE}]))", "{{topic}}"),
        description="Output, changelog, dead-letter and routing records written per second."))
    d = d.with_panel(series(
        "Commits and aborts", "ops",
        q(f"sum(rate(commits_total{{{SEL}}}[{RATE}]))", "commits"),
        q(f"sum(rate(transaction_aborts_total{{{SEL}}}[{RATE}]))", "aborts"),
        description="Commits (transactions under exactly_once_v2) and aborted transactions per second."))
    d = d.with_panel(series(
        "Commit latency", "s",
        q(histogram_quantile(0.5, "commit_latency_seconds", "guarantee"), "p50 {{guarantee}}"),
        q(histogram_quantile(0.99, "commit_latency_seconds", "guarantee"), "p99 {{guarantee}}"),
        description="From handing a batch to the commit thread to its commit."))
    d = d.with_panel(series(
        "Dead letters by reason", "ops",
        q(f"sum by (reason) (rate(records_dead_lettered_total{{{SEL}}}[{RATE}]))", "{{reason}}"),
        description="Records that could not be decoded, written to the dead-letter topic (docs/operations.md)."))
    d = d.with_panel(series(
        "Rebalances", "short",
        q(f"sum by (kind) (increase(rebalances_total{{{SEL}}}[{RATE}]))", "{{kind}}"),
        description="Partition assignments, revocations and losses."))
    d = d.with_panel(series(
        "Chaser and billing events", "ops",
        q(f"sum(rate(chaser_received_total{{{SEL}}}[{RATE}]))", "chasers"),
        q(f"sum(rate(billing_aggregation_total{{{SEL}}}[{RATE}]))", "billing updates"),
        q(f"sum(rate(billing_customer_bills_total{{{SEL}}}[{RATE}]))", "first bills"),
        description="Events folded into the stores per second."))

    d = d.with_row(row("State"))
    d = d.with_panel(series(
        "Store keys", "short", q(f"sum by (store) (store_keys{{{SEL}}})", "{{store}}"),
        description="Keys per store, all pods."))
    d = d.with_panel(series(
        "Restore progress", "short",
        q(f"sum by (store) (restore_remaining_records{{{SEL}}})", "left {{store}}"),
        q(f"sum by (store) (rate(restore_records_total{{{SEL}}}[{RATE}]))", "restored/s {{store}}"),
        q(f"sum(partitions_restoring{{{SEL}}})", "partitions restoring"),
        description="Changelog records left to restore, restore rate, partitions not yet serving."))

    d = d.with_row(row("Gateway"))
    d = d.with_panel(series(
        "Requests per route and status", "reqps",
        q(f"sum by (route, status) (rate(http_requests_total{{{SEL}}}[{RATE}]))", "{{route}} {{status}}"),
        description="API and health requests answered per second."))
    d = d.with_panel(series(
        "Latency per route", "s",
        q(histogram_quantile(0.5, "http_request_duration_seconds", "route"), "p50 {{route}}"),
        q(histogram_quantile(0.99, "http_request_duration_seconds", "route"), "p99 {{route}}"),
        description="Request latency inside the gateway (parse to last byte written)."))
    d = d.with_panel(series(
        "Forwarding outcomes", "reqps",
        q(f"sum by (outcome) (rate(gateway_forwarded_requests_total{{{SEL}}}[{RATE}]))", "{{outcome}}"),
        description="Lookups of keys owned by other pods, forwarded to the owner's gateway (docs/routing.md)."))
    d = d.with_panel(series(
        "Socket errors", "ops",
        q(f"sum by (reason) (rate(socket_protocol_errors_total{{{SEL}}}[{RATE}]))", "ingestor: {{reason}}"),
        q(f'sum by (outcome) (rate(gateway_ingestor_requests_total{{{SEL}, outcome!="ok"}}[{RATE}]))',
          "gateway → ingestor: {{outcome}}"),
        q(f"sum by (kind) (rate(gateway_socket_errors_total{{{SEL}}}[{RATE}]))", "gateway: {{kind}}"),
        description="Garbage frames at the ingestor, failed socket requests and HTTP connection errors at the "
                    "gateway."))
    d = d.with_panel(series(
        "Open connections", "short",
        q(f"sum by (listener) (gateway_open_connections{{{SEL}}})", "http {{listener}}"),
        q(f"sum(socket_connections_open{{{SEL}}})", "ingestor socket"),
        description="HTTP connections per listener and Unix-socket connections to the ingestors."))

    d = d.with_row(row("Resources"))
    d = d.with_panel(series(
        "Memory per container", "bytes",
        q(f"sum by (pod, process) (process_resident_memory_bytes{{{SEL}}})", "RSS {{pod}} {{process}}"),
        q(f'sum by (pod, container) (container_memory_working_set_bytes{{{SEL}, container=~"ingestor|gateway"}})',
          "working set {{pod}} {{container}}"),
        description="Resident memory of each process (the ingestor's includes its LMDB stores' mapped pages) "
                    "and, where the kubelet's cAdvisor series are scraped, each container's working set."))
    d = d.with_panel(series(
        "CPU per container", "percentunit",
        q(f"sum by (pod, process) (rate(process_cpu_seconds_total{{{SEL}}}[{RATE}]))", "{{pod}} {{process}}"),
        description="CPU seconds per second of each process (1 = one core)."))
    return d


def render() -> str:
    return json.dumps(build().build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if OUT.read_text() != text:
            print(f"{OUT} is stale: run `make dashboard`", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
