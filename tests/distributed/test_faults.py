"""Stop signals are noted and agreed on; an error on one process alone aborts the job."""
from __future__ import annotations

import os
import signal
import sys

import pytest

from handprop.distributed import RanksDivergedError, StopRequested, StopSignals, abort_on_error

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@pytest.fixture
def stop():
    handlers = StopSignals().install()
    yield handlers
    handlers.restore()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGUSR1])
def test_a_stop_signal_is_noted_not_raised(stop, sig):
    assert stop.flag == 0.0
    os.kill(os.getpid(), sig)  # delivered before the next bytecode: no exception here
    assert stop.flag == 1.0 and stop.received == signal.Signals(sig).name


def test_every_process_stops_when_the_sum_of_flags_is_non_zero(stop):
    stop.stop_if_any(0.0, "here")  # nobody asked
    with pytest.raises(StopRequested, match="a stop signal sent to another process received; every "
                                            "process stopped before step 3"):
        stop.stop_if_any(1.0, "before step 3")  # another process got the signal, this one did not
    os.kill(os.getpid(), signal.SIGTERM)
    with pytest.raises(StopRequested, match="SIGTERM received"):
        stop.stop_if_any(2.0, "here")


def test_a_second_signal_stops_at_once(stop):
    os.kill(os.getpid(), signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt) as info:
        os.kill(os.getpid(), signal.SIGINT)
    assert not isinstance(info.value, StopRequested)


def test_restore_gives_the_handlers_back():
    before = signal.getsignal(signal.SIGTERM)
    StopSignals().install().restore()
    assert signal.getsignal(signal.SIGTERM) is before


class FakeComm:
    rank, size = 1, 2

    def __init__(self):
        self.aborted = None

    def abort(self, code):
        self.aborted = code


@pytest.mark.parametrize("exc, code", [(ValueError("bad --lr"), 2), (RuntimeError("bug"), 1),
                                       (KeyboardInterrupt(), 1), (SystemExit(3), 3)])
def test_an_error_on_one_process_aborts_the_job(exc, code, capsys):
    comm = FakeComm()
    with abort_on_error(comm):
        raise exc
    assert comm.aborted == code
    err = capsys.readouterr().err
    assert err.startswith("handprop (rank 1 of 2): ")
    if isinstance(exc, ValueError):
        assert err == "handprop (rank 1 of 2): error: bad --lr\n", "bad input: one line, no traceback"
    elif isinstance(exc, RuntimeError):
        assert "Traceback" in err and "RuntimeError: bug" in err


@pytest.mark.parametrize("exc", [StopRequested("SIGTERM"), RanksDivergedError("differ"), SystemExit(0)])
def test_exceptions_every_process_raises_pass_through(exc):
    comm = FakeComm()
    with pytest.raises(type(exc)), abort_on_error(comm):
        raise exc
    assert comm.aborted is None


def test_an_agreed_stop_converted_by_the_caller_still_passes_through():
    """The trainer turns Ctrl-C into its own exception (``raise ... from None``): the stop is
    still found in the context, so the processes exit together instead of aborting."""
    class TrainingInterrupted(Exception):
        pass

    comm = FakeComm()
    with pytest.raises(TrainingInterrupted), abort_on_error(comm):
        try:
            raise StopRequested("SIGTERM")
        except KeyboardInterrupt:
            raise TrainingInterrupted("resume with ...") from None
    assert comm.aborted is None
