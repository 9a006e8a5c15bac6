"""Reliability suites (issue 7): crash consistency, control-plane faults, races, a bad-input corpus,
the isolation matrix and secrets hygiene, on the real control plane with the real operator.

The figures each suite counts (faults injected, races run, bad inputs tried) are printed at the end
of the run under "reliability figures"; the README's "Reliability" section reports them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from reliability_support import FIGURES, AdmissionTimes

from support.platform import Platform


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    for key in sorted(FIGURES):
        terminalreporter.write_line(f"{key}: {FIGURES[key]}")


@pytest.fixture
def admission_times(platform: Platform) -> Iterator[Callable[[str], AdmissionTimes]]:
    """Starts an AdmissionTimes watch of a control namespace; each one started is stopped after the test."""
    started: list[AdmissionTimes] = []

    def start(namespace: str) -> AdmissionTimes:
        started.append(AdmissionTimes(platform, namespace).start())
        return started[-1]

    yield start
    for times in started:
        times.stop()
