"""compose/'s Prometheus and Grafana files: valid, and about metrics Ordinaut really serves.

Every ``orchestrator_*`` name in the alert rules and the Grafana dashboard must be one a real
``/metrics`` scrape serves (a counter ``x`` as ``x_total``, a histogram as ``x_bucket``,
``x_count``, ``x_sum``). Where ``promtool`` is installed (Debian: ``apt-get install
prometheus``), it checks the rules, runs their unit tests (``alerts_test.yml``: each alert
fires when it should and not otherwise) and checks the scrape configuration.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ordinaut.runtime import Runtime
from tests.integration.conftest import Api

COMPOSE = Path(__file__).resolve().parents[2] / "compose"
NAME = re.compile(r"\borchestrator_[a-z_]+\b")


def served(api: Api) -> set[str]:
    """The sample names a scrape of ``/metrics`` can contain."""
    runtime = Runtime(api.settings, role="test")
    try:  # a beat heartbeat, as a running beat writes it: its age is a metric
        runtime.redis.set(runtime.heartbeat_key("beat"), datetime.now(UTC).isoformat(), ex=60)
    finally:
        runtime.close()
    text = httpx.get(f"{api.base_url}/metrics", timeout=10).text
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_count", "_sum"),
        }.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def expressions() -> dict[str, str]:
    """Where each PromQL expression of the alerts and the dashboard comes from → the text."""
    found: dict[str, str] = {}
    rules: dict[str, Any] = yaml.safe_load((COMPOSE / "prometheus" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            found[f"alert {rule['alert']}"] = rule["expr"]
    board = json.loads((COMPOSE / "grafana" / "dashboards" / "ordinaut.json").read_text())
    for panel in board["panels"]:
        for target in panel["targets"]:
            found[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    return found


def test_alerts_and_dashboard_use_metrics_that_exist(api: Api) -> None:
    names = served(api)
    found = expressions()
    assert {"alert OrdinautRunFailureRatioHigh", "alert OrdinautSchedulerLagging"} <= set(found)
    assert "alert OrdinautNoWorkerHeartbeat" in found
    used: set[str] = set()
    for where, expr in found.items():
        metrics = set(NAME.findall(expr))
        assert metrics, f"{where} uses no Ordinaut metric: {expr}"
        unknown = metrics - names
        assert not unknown, f"{where} uses {sorted(unknown)}, not served by /metrics"
        used |= metrics
    # the three seed alerts watch what they say they watch
    assert "orchestrator_runs_total" in found["alert OrdinautRunFailureRatioHigh"]
    assert "orchestrator_scheduler_lag_seconds" in found["alert OrdinautSchedulerLagging"]
    assert "orchestrator_workers_live" in found["alert OrdinautNoWorkerHeartbeat"]
    assert {"orchestrator_step_duration_seconds_bucket", "orchestrator_steps_total"} <= used


def test_prometheus_files_pass_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    rules = COMPOSE / "prometheus" / "alerts.yml"
    # without promtool, at least the files parse and name the rule file compose mounts
    config: dict[str, Any] = yaml.safe_load((COMPOSE / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert config["scrape_configs"][0]["metrics_path"] == "/metrics"
    compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts
    assert {"prometheus", "grafana"} <= set(compose["services"])
    if promtool is None:
        return
    for args in (["check", "rules", str(rules)], ["test", "rules", "alerts_test.yml"]):
        done = subprocess.run(
            [promtool, *args],
            cwd=COMPOSE / "prometheus",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    # the scrape configuration, with the rule file where this checkout has it
    config["rule_files"] = [str(rules)]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [promtool, "check", "config", str(local)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
