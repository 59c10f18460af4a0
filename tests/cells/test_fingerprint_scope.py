"""Which code counts in a cell's fingerprint: a change to code a cell does not run must not make
its finished runs stale (every cell of the store would be recomputed for nothing)."""

from __future__ import annotations

import pytest

from benchmarks.cells.fingerprint import RUNNER, closure
from methods.lifecycle import MethodKind
from methods.registry import get_method, list_methods

SURGERY = "methods.channel_graph"


def computed_by(method: str) -> list[str]:
    return closure((RUNNER, get_method(method).__module__))


@pytest.mark.parametrize("method", list_methods())
def test_channel_surgery_counts_only_for_the_methods_that_remove_channels(method):
    removes_channels = get_method(method).kind == MethodKind.STRUCTURED
    assert (SURGERY in computed_by(method)) == removes_channels


def test_loading_a_logged_network_counts_in_no_cell():
    assert not any("benchmarks.cells.logged_network" in computed_by(m) for m in list_methods())
