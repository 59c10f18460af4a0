"""The SIGTERM hand-off of a sweep inside a submitit job (``benchmarks.sweep.requeue``), with real
signals sent to this process. The whole path through a real SLURM cluster (preemption, requeue,
resume) is ``test_slurm.py``; here, without one, what the hand-off itself decides: whose handler
runs after the sweep stopped, with which signal, and that a second SIGTERM is then ignored."""

from __future__ import annotations

import os
import signal

import pytest

from benchmarks.sweep import first_sigterm, requeue


@pytest.fixture(autouse=True)
def restore_sigterm():
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


def handler_from(module: str, calls: list[int]):
    """A SIGTERM handler defined in ``module`` (submitit's job environment installs its own)."""

    def handle(signum, _frame):
        calls.append(signum)

    handle.__module__ = module
    return handle


def test_inside_a_submitit_job_the_stopped_sweep_hands_sigterm_to_submitit():
    calls: list[int] = []
    signal.signal(signal.SIGTERM, handler_from("submitit.core.job_environment", calls))
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"), requeue.sigterm_stops_the_sweep():
        assert signal.getsignal(signal.SIGTERM).__module__ == first_sigterm.__name__  # ours
        os.kill(os.getpid(), signal.SIGTERM)
    assert calls == [signal.SIGTERM]  # submitit checkpoints and requeues the job
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN  # its second SIGTERM is ignored


def test_outside_submitit_sigterm_stops_the_sweep_and_nothing_else_runs():
    calls: list[int] = []
    signal.signal(signal.SIGTERM, handler_from("somebody.else", calls))
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"), requeue.sigterm_stops_the_sweep():
        os.kill(os.getpid(), signal.SIGTERM)
    assert calls == []


def test_ctrl_c_in_a_submitit_job_is_not_handed_to_submitit():
    calls: list[int] = []
    signal.signal(signal.SIGTERM, handler_from("submitit.core.job_environment", calls))
    with pytest.raises(KeyboardInterrupt), requeue.sigterm_stops_the_sweep():
        raise KeyboardInterrupt  # what Ctrl-C raises: no requeue
    assert calls == []


def test_sigterm_is_submitits_preemption_signal_unless_the_user_chose_one(monkeypatch):
    monkeypatch.delenv(requeue.PREEMPT_SIGNAL, raising=False)
    requeue.preempt_with_sigterm()
    assert os.environ[requeue.PREEMPT_SIGNAL] == "TERM"
    monkeypatch.setenv(requeue.PREEMPT_SIGNAL, "USR2")
    requeue.preempt_with_sigterm()
    assert os.environ[requeue.PREEMPT_SIGNAL] == "USR2"
