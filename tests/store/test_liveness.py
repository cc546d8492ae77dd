"""Telling a recorded process from a dead one, a zombie, or a stranger with its pid."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from assay.store.liveness import alive, me, started


def test_this_process_is_alive_with_its_own_start_time() -> None:
    pid, _, when = me()
    assert alive(pid, when)
    assert alive(pid)


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="start times come from /proc")
def test_a_process_that_started_at_another_time_is_not_the_one_recorded() -> None:
    when = started(os.getpid())
    assert when is not None
    assert not alive(os.getpid(), when + 1)


def test_an_exited_process_is_not_alive_even_before_it_is_collected() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet collected
        assert not alive(child.pid)
    finally:
        child.wait()
    assert not alive(child.pid)
    assert not alive(None)
