"""A watch that keeps failing shows on the operator's health endpoint (issue 11, finding 7).

The operator runs behind the loopback fault proxy; every watch of ClusterRoles (the platform-role
watch and the children's informer) is answered 404 from some moment on, while everything else works.
The operator must keep running, count the failures (`tenantry_watch_consecutive_failures`), fail
`/healthz` naming the kind once they repeat, and be healthy again by itself once the watches work.
(Objects a callback fails on are isolated without any of this: tests/unit/test_watch_health.py.)
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from reliability_support import FIGURES, operator_behind_proxy

from support.cluster import wait_for
from support.operator import OperatorProcess
from tenantry.watch_health import UNHEALTHY_AFTER

CLUSTERROLE_WATCHES = "/apis/rbac.authorization.k8s.io/v1/clusterroles"


def _health(process: OperatorProcess) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{process.health_port}/healthz", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _failures(process: OperatorProcess, kind: str) -> float:
    prefix = f'tenantry_watch_consecutive_failures{{kind="{kind}"}} '
    line = next((line for line in process.metrics().splitlines() if line.startswith(prefix)), None)
    return float(line[len(prefix):]) if line else -1.0


def test_a_watch_failing_again_and_again_fails_healthz_until_it_works_again(
        operator: OperatorProcess, tmp_path: Path) -> None:
    with operator_behind_proxy(operator, tmp_path) as (second, proxy):
        second.start(timeout=180)
        status, body = _health(second)
        assert status == 200 and json.loads(body)["probes"].get("watches") == "ok", body  # kopf's probes, relayed
        assert _failures(second, "ClusterRole") == 0.0 and _failures(second, "Secret") == 0.0

        proxy.set_faults(not_found_watches=CLUSTERROLE_WATCHES)
        proxy.cut_streams()  # every watch reconnects; those of ClusterRoles meet the 404 from now on
        wait_for(lambda: _failures(second, "ClusterRole") >= UNHEALTHY_AFTER, 90, interval=1.0,
                 message=f"{UNHEALTHY_AFTER} failures in a row of the ClusterRole watch")
        wait_for(lambda: _health(second)[0] == 500, 30, interval=1.0, message="/healthz failing")
        assert f"The watch of ClusterRole failed {UNHEALTHY_AFTER} times in a row" in second.log_text()
        assert second.process is not None and second.process.poll() is None  # still running, not crashed
        assert _failures(second, "Secret") == 0.0  # the other watches are fine

        proxy.set_faults()  # the watches work again: healthy by itself
        wait_for(lambda: _health(second)[0] == 200, 60, interval=1.0, message="/healthz ok again")
        assert _failures(second, "ClusterRole") == 0.0
        FIGURES["faults: watches failing until /healthz failed"] += proxy.counts["not_found"]
        FIGURES["faults injected"] += proxy.counts["not_found"]
