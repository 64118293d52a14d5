"""Fixtures for the lab tests: the lab built once per module, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from failover.lab import Lab
from failover.testing.lab import log_tails, reset_lab, running_lab, unavailable


@pytest.fixture(scope="module")
def lab_module() -> Iterator[Lab]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with running_lab() as lab:
        yield lab


@pytest.fixture
def lab(lab_module: Lab, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """The module's lab with no steering routes, no cuts and every server running."""
    reset_lab(lab_module)
    yield lab_module
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(log_tails(lab_module))
