"""The Grafana dashboard, its provisioning and the Prometheus scrape config fit the compose stack
and the metrics the services really register: a renamed metric, a label that does not exist or a
service left out of the scrape config fails here, not on an operator's empty panel."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from prometheus_client.metrics import MetricWrapperBase

import notifier.metrics
import porting_runtime.metrics
from porting_runtime.health import ProgressBoard
from porting_runtime.http import add_operational_routes

from ..deployment_tools import ROOT, resolved_compose

DASHBOARD_FILE = ROOT / "deploy" / "grafana" / "porting.json"
DASHBOARD = json.loads(DASHBOARD_FILE.read_text())
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
SCRAPE = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
COMPOSE = resolved_compose()
METRIC_MODULES = (porting_runtime.metrics, notifier.metrics)

# What PromQL itself spells, and the one series Prometheus makes for every target.
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "topk", "bottomk", "quantile", "rate", "irate", "increase", "delta",
    "histogram_quantile", "clamp_min", "clamp_max", "abs", "time", "vector", "scalar", "by", "without", "on",
    "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
}
TARGET_LABELS = {"job", "instance"}
PROMETHEUS_OWN = {"up": TARGET_LABELS}


@dataclass(frozen=True)
class Family:
    name: str
    kind: str
    labels: frozenset[str]

    def samples(self) -> dict[str, frozenset[str]]:
        """The series names a query may use, with their labels."""
        if self.kind == "counter":
            return {f"{self.name}_total": self.labels}
        if self.kind == "histogram":
            return {f"{self.name}_bucket": self.labels | {"le"}, f"{self.name}_count": self.labels,
                    f"{self.name}_sum": self.labels}
        return {self.name: self.labels}


def _families() -> list[Family]:
    found = []
    for module in METRIC_MODULES:
        for metric in vars(module).values():
            if isinstance(metric, MetricWrapperBase):
                [described] = metric.describe()
                found.append(Family(described.name, described.type, frozenset(metric._labelnames)))  # noqa: SLF001
    return found


FAMILIES = _families()
SERIES: dict[str, frozenset[str]] = {
    **{name: frozenset(labels) for name, labels in PROMETHEUS_OWN.items()},
    **{name: labels for family in FAMILIES for name, labels in family.samples().items()},
}


def _panels() -> list[dict[str, Any]]:
    panels = []
    for panel in DASHBOARD["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # a collapsed row keeps its panels inside
    return panels


def _targets() -> list[tuple[str, dict[str, Any]]]:
    return [(panel["title"], target) for panel in _panels() for target in panel.get("targets", [])]


@dataclass(frozen=True)
class Query:
    series: list[str]
    selector_labels: list[tuple[str, set[str]]]
    grouping_labels: set[str]


LABEL_LISTS = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)"


def _parse(expr: str) -> Query:
    """What a PromQL expression names: its series, the labels it matches on, the labels it groups by."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values are not names
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana's $__rate_interval and the like
    selectors = [(name, set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers)))
                 for name, matchers in re.findall(r"([A-Za-z_:][\w:]*)\s*\{([^}]*)\}", text)]
    grouping = {label.strip() for group in re.findall(LABEL_LISTS, text) for label in group.split(",") if label.strip()}
    bare = re.sub(LABEL_LISTS, " ", re.sub(r"\[[^\]]*\]", " ", re.sub(r"\{[^}]*\}", " ", text)))
    words = re.findall(r"(?<![\w.])[A-Za-z_:][\w:]*", bare)
    return Query([w for w in words if w not in PROMQL_WORDS], selectors, grouping)


def test_the_catalogue_holds_the_runtimes_and_the_notifiers_metrics():
    names = {family.name for family in FAMILIES}
    assert {"porting_consumer_lag", "porting_handler_seconds", "porting_outbox_backlog", "porting_outbox_set_aside",
            "porting_dead_letters", "porting_timers_due", "porting_timers_overdue_seconds",
            "notifier_deliveries_pending"} <= names


def test_the_query_reader_finds_series_matchers_and_grouping():
    query = _parse('histogram_quantile(0.99, sum by (consumer, le) '
                   '(rate(porting_handler_seconds_bucket{consumer="ledger"}[$__rate_interval])))')
    assert query.series == ["porting_handler_seconds_bucket"]
    assert query.selector_labels == [("porting_handler_seconds_bucket", {"consumer"})]
    assert query.grouping_labels == {"consumer", "le"}
    assert _parse('up{job=~"a|b"} and on(instance) porting_loop_up').series == ["up", "porting_loop_up"]


def _problems(expr: str, legend: str = "") -> list[str]:
    """Why a panel query would show nothing: a series no service registers, a label its series
    do not have, a legend naming a label the query does not keep."""
    query = _parse(expr)
    if not query.series:
        return ["names no metric"]
    unknown = [name for name in query.series if name not in SERIES]
    if unknown:
        return [f"no such series {unknown}"]
    problems = [f"{name} has no label {labels - SERIES[name] - TARGET_LABELS}"
                for name, labels in query.selector_labels if not labels <= SERIES[name] | TARGET_LABELS]
    available = set().union(*(SERIES[name] for name in query.series)) | TARGET_LABELS
    if not query.grouping_labels <= available:
        problems.append(f"groups by {query.grouping_labels - available}, which its series do not have")
    shown, kept = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend)), query.grouping_labels or available
    if not shown <= kept:
        problems.append(f"the legend names {shown - kept}, which the query does not keep")
    return problems


@pytest.mark.parametrize(("title", "target"), _targets(), ids=[f"{t}:{q['refId']}" for t, q in _targets()])
def test_every_panel_query_names_only_metrics_and_labels_the_services_register(title, target):
    assert _problems(target["expr"], target.get("legendFormat", "")) == [], f"{title}: {target['expr']}"


@pytest.mark.parametrize(("expr", "legend", "problem"), [
    ("sum by (consumer) (porting_consumer_lagg)", "", "no such series"),
    ("rate(porting_events[5m])", "", "no such series"),  # a counter is read through its _total series
    ("porting_handler_seconds", "", "no such series"),  # a histogram through _bucket, _count or _sum
    ('porting_outbox_backlog{consumer="ledger"}', "", "has no label"),
    ("sum by (channel) (porting_dead_letters_total)", "", "groups by"),
    ("sum by (service) (porting_timers_due)", "{{kind}}", "the legend names"),
    ("vector(1)", "", "names no metric"),
])
def test_the_query_check_refuses(expr, legend, problem):
    problems = _problems(expr, legend)
    assert problems and problem in problems[0], problems


def test_every_metric_the_services_register_is_on_the_dashboard():
    used = {name for _, target in _targets() for name in _parse(target["expr"]).series}
    missing = [family.name for family in FAMILIES if not set(family.samples()) & used]
    assert not missing, f"no panel shows {missing}"


@pytest.mark.parametrize(("what", "series"), [
    ("consumer lag", {"porting_consumer_lag"}),
    ("events by outcome", {"porting_events_total"}),
    ("dead letters", {"porting_dead_letters_total"}),
    ("outbox backlog and set aside", {"porting_outbox_backlog", "porting_outbox_set_aside"}),
    ("timers due", {"porting_timers_due"}),
    ("timers overdue", {"porting_timers_overdue_seconds"}),
    ("notifier deliveries pending", {"notifier_deliveries_pending"}),
    ("notifier deliveries given up", {"notifier_deliveries_gave_up_total"}),
    ("loop restarts", {"porting_loop_restarts_total"}),
])
def test_the_dashboard_has_a_panel_for(what, series):
    panels = [{n for t in p.get("targets", []) for n in _parse(t["expr"]).series} for p in _panels()]
    assert any(series <= names for names in panels), f"no single panel shows {series}"


def test_handler_latency_is_shown_as_p50_and_p99_from_the_histograms_buckets():
    [panel] = [p for p in _panels()
               if any("porting_handler_seconds_bucket" in t["expr"] for t in p.get("targets", []))]
    quantiles = sorted(re.search(r"histogram_quantile\((0\.\d+)", t["expr"]).group(1) for t in panel["targets"])
    assert quantiles == ["0.5", "0.99"]
    assert all("le" in _parse(t["expr"]).grouping_labels for t in panel["targets"]), "quantiles need the le label"
    assert panel["fieldConfig"]["defaults"]["unit"] == "s"


def test_the_dashboard_is_well_formed_for_grafana():
    assert DASHBOARD["uid"] and DASHBOARD["title"] and isinstance(DASHBOARD["schemaVersion"], int)
    panels = _panels()
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, f"{panel['title']} is wider than the dashboard"
        area = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
        if panel["type"] != "row":
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs)) and panel["targets"], panel["title"]


def test_every_panel_reads_the_provisioned_prometheus_datasource():
    [datasource] = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert datasource["type"] == "prometheus"
    for panel in _panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": datasource["uid"]}, panel["title"]
        assert all(t["datasource"]["uid"] == datasource["uid"] for t in panel["targets"]), panel["title"]
    prometheus = COMPOSE["services"]["prometheus"]
    [port] = prometheus["ports"]
    assert datasource["url"] == f"http://prometheus:{port['target']}", "the compose service, inside the network"


def _mount(service: str, target: str) -> dict[str, Any]:
    [mount] = [v for v in COMPOSE["services"][service]["volumes"] if v["target"] == target]
    return mount


def test_grafana_loads_the_dashboard_file_where_its_provisioning_looks():
    [provider] = yaml.safe_load((PROVISIONING / "dashboards" / "porting.yml").read_text())["providers"]
    dashboards = Path(provider["options"]["path"])
    mount = _mount("grafana", str(dashboards / DASHBOARD_FILE.name))
    assert Path(mount["source"]) == DASHBOARD_FILE and mount["read_only"]
    provisioning = _mount("grafana", "/etc/grafana/provisioning")
    assert Path(provisioning["source"]) == PROVISIONING and provisioning["read_only"]


def test_prometheus_reads_the_scrape_config_from_the_repository_read_only():
    mount = _mount("prometheus", "/etc/prometheus/prometheus.yml")
    assert Path(mount["source"]) == ROOT / "deploy" / "prometheus" / "prometheus.yml" and mount["read_only"]


@pytest.mark.parametrize(("service", "port"), [("prometheus", 9090), ("grafana", 3000)])
def test_prometheus_and_grafana_run_pinned_images_published_on_their_usual_ports(service, port):
    spec = COMPOSE["services"][service]
    image, _, tag = spec["image"].rpartition(":")
    assert image and re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{spec['image']} is pinned to a release"
    [published] = spec["ports"]
    assert (published["target"], int(published["published"])) == (port, port)
    assert f"127.0.0.1:{port}" in " ".join(spec["healthcheck"]["test"])


def _serves_metrics(name: str) -> bool:
    """A compose service built from this repository runs the shared runtime, which serves /metrics."""
    return "build" in COMPOSE["services"][name]


def test_the_runtime_serves_metrics_on_every_services_http_port():
    app = FastAPI()

    async def components() -> dict[str, object]:
        return {}

    add_operational_routes(app, service="any", pool=None, components=components, board=ProgressBoard())  # type: ignore[arg-type]
    assert "/metrics" in {route.path for route in app.routes}


def test_the_scrape_config_names_every_compose_service_that_serves_metrics_and_nothing_else():
    expected = {}
    for name in filter(_serves_metrics, COMPOSE["services"]):
        expected[name] = f"{name}:{COMPOSE['services'][name]['environment']['HTTP_PORT']}"
    assert sorted(expected) == ["notifier", "portability", "workflow"]
    scraped = {}
    for job in SCRAPE["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        [static] = job["static_configs"]
        assert "labels" not in static, "a target label would clash with the metrics' own service label"
        [target] = static["targets"]
        scraped[job["job_name"]] = target
    assert scraped == expected


def test_the_dashboards_target_panel_names_every_scrape_job():
    jobs = {job["job_name"] for job in SCRAPE["scrape_configs"]}
    [expr] = [t["expr"] for _, t in _targets() if _parse(t["expr"]).series == ["up"]]
    named = set(re.search(r'job=~"([^"]+)"', expr).group(1).split("|"))
    assert named == jobs
