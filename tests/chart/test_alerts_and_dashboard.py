"""Alerts and the Grafana dashboard query only metrics Tenantry exports, and the alerts work.

`promtool` (Debian's `prometheus` package, installed by `make test`) checks the rule file and runs
its unit tests (tests/chart/alerts.test.yaml): each alert fires on the situation it names, with the
message a person reads, and stays quiet otherwise.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from chart_support import (
    DASHBOARD_FILE,
    METER_METRICS,
    RULES_FILE,
    exported_metric_names,
    hack_script,
    operator_metric_names,
)

ALERTS_TEST = Path(__file__).with_name("alerts.test.yaml")

# Series Prometheus itself makes: `up` for every scrape target.
PROMETHEUS_METRICS = frozenset({"up"})

# PromQL words that look like metric names but are not.
_PROMQL_WORDS = frozenset({
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group",
    "rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear", "histogram_quantile", "absent",
    "absent_over_time", "time", "vector", "scalar", "sort", "sort_desc", "label_replace", "label_join",
    "clamp_min", "clamp_max", "abs", "ceil", "floor", "round", "sum_over_time", "avg_over_time", "max_over_time",
    "min_over_time", "count_over_time", "last_over_time", "changes", "resets", "label_values", "inf", "nan",
})


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: `apt-get install prometheus` (make test installs it)"
    return path


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or a Grafana label_values() query) reads."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # label lists
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables
    text = re.sub(r"label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*\w+\s*\)", r"\1", text)
    tokens = set(re.findall(r"(?<![\w.])[a-zA-Z_:][\w:]*", text))
    return {t for t in tokens if t.lower() not in _PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]", t)}


def dashboard_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, expression) for every panel target and templating query, rows included."""
    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            yield f"variable {variable['name']}", query["query"] if isinstance(query, dict) else query


def rule_expressions() -> Iterator[tuple[str, str]]:
    for group in yaml.safe_load(RULES_FILE.read_text())["groups"]:
        for rule in group["rules"]:
            yield rule.get("alert") or rule.get("record"), rule["expr"]


# ------------------------------------------------------------------------------------------ names
def test_metric_name_extraction_sees_through_promql() -> None:
    assert metric_names('sum by (reseller) (rate(tenantry_charge_total{side="retail",x=~"$r"}[$__range])) * 3600') \
        == {"tenantry_charge_total"}
    assert metric_names("histogram_quantile(0.95, sum by (le) (rate(a_bucket[5m]))) / ignoring(x) b") \
        == {"a_bucket", "b"}
    assert metric_names("label_values(tenantry_region_capacity, region)") == {"tenantry_region_capacity"}
    assert metric_names('absent(up{job=~".*tenantry.*"} == 1) - time() < 14 * 86400') == {"up"}


def test_operator_exports_the_metrics_the_issue_asks_for() -> None:
    names = operator_metric_names()
    for expected in ("tenantry_operator_reconciles_total", "tenantry_operator_reconcile_duration_seconds_bucket",
                     "tenantry_operator_admission_refusals_total", "tenantry_operator_queue_depth",
                     "tenantry_tenant_ready", "tenantry_operator_tenants_refused"):
        assert expected in names, expected


def test_every_metric_a_dashboard_panel_queries_is_exported() -> None:
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    exported = exported_metric_names() | PROMETHEUS_METRICS
    queried: set[str] = set()
    for where, expr in dashboard_queries(dashboard):
        names = metric_names(expr)
        assert names, f"{where}: no metric found in {expr!r}"
        assert names <= exported, f"{where} queries metrics nobody exports: {sorted(names - exported)}"
        queried |= names
    # The dashboard covers what the issue lists: licences, capacity, usage, revenue, certificates, errors.
    for needed in ("tenantry_reseller_licenses", "tenantry_region_capacity", "tenantry_region_allocated",
                   "tenantry_tenant_resource_used", "tenantry_charge_total",
                   "tenantry_certificate_expiry_timestamp_seconds", "tenantry_operator_reconciles_total"):
        assert needed in queried, needed


def test_every_metric_an_alert_queries_is_exported() -> None:
    exported = exported_metric_names() | PROMETHEUS_METRICS
    for alert, expr in rule_expressions():
        names = metric_names(expr)
        assert names and names <= exported, f"{alert} queries metrics nobody exports: {sorted(names - exported)}"


def test_dashboard_is_grafana_json_with_unique_panel_ids() -> None:
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    assert dashboard["uid"] == "tenantry-overview" and dashboard["title"] == "Tenantry"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("licences", "capacity", "revenue", "margin", "top tenants", "certificates", "reconcile errors"):
        assert topic in titles, topic
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel.get("description"), f"panel {panel['title']!r} says nothing about what it shows"
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_dashboard_json_is_what_its_generator_writes() -> None:
    assert DASHBOARD_FILE.read_text() == hack_script("render-dashboard").render(), \
        "the dashboard JSON was edited by hand or is stale: change hack/render-dashboard and run it"


def test_design_metric_names_are_the_ones_this_test_knows() -> None:
    """DESIGN.md §4 is the contract; when it is beside the repository (CI has shared/), compare."""
    design = Path(__file__).resolve().parents[3] / "shared" / "DESIGN.md"
    if not design.exists():
        return  # the list in chart_support is the copy of §4 used everywhere else
    section = design.read_text().split("## 4.")[1].split("## 5.")[0]
    listed = set(re.findall(r"`(tenantry_[a-z_]+)`", section))
    assert listed == METER_METRICS


# ------------------------------------------------------------------------------------------ promtool
def test_alert_rules_pass_promtool_check() -> None:
    result = subprocess.run([promtool(), "check", "rules", str(RULES_FILE)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    result = subprocess.run([promtool(), "test", "rules", ALERTS_TEST.name], capture_output=True, text=True,
                            timeout=120, cwd=ALERTS_TEST.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    # Every alert has at least one unit test.
    tested = {case["alertname"] for test in yaml.safe_load(ALERTS_TEST.read_text())["tests"]
              for case in test.get("alert_rule_test", [])}
    alerts = {name for name, _ in rule_expressions()}
    assert alerts <= tested, f"alerts without a promtool test: {sorted(alerts - tested)}"


def test_alerts_cover_what_operators_need_to_hear_about() -> None:
    alerts = {name for name, _ in rule_expressions()}
    assert {"TenantryLicensesNearlyExhausted", "TenantryRegionOvercommitted", "TenantryCertificateExpiringSoon",
            "TenantryTenantNotReady", "TenantryBillingSinkFailing", "TenantryBillingSpoolGrowing",
            "TenantryOperatorDown"} <= alerts
    for group in yaml.safe_load(RULES_FILE.read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
