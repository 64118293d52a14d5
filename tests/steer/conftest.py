"""Fixtures for the steering tests: the lab's own (built once per module, reset each test)."""

from tests.lab.conftest import lab, lab_module

__all__ = ["lab", "lab_module"]
