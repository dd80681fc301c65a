"""The second thread of a split training step: offers, chains, marks and failures."""

from __future__ import annotations

import threading

import pytest

from trainkit.ml.lanes import Lane, share


def test_share_returns_both_results_and_runs_the_second_on_a_free_lane():
    seen: dict[str, str] = {}
    with Lane("t") as lane:
        started = threading.Event()

        def first() -> int:
            started.wait(5)  # the lane is free: it starts the second part meanwhile
            seen["first"] = threading.current_thread().name
            return 1

        def second() -> int:
            started.set()
            seen["second"] = threading.current_thread().name
            return 2

        assert lane.share(first, second) == (1, 2)
    assert seen["first"] == threading.current_thread().name
    assert seen["second"].startswith("t_")
    assert share(lambda: 3, lambda: 4, None) == (3, 4)


def test_an_offer_the_lane_has_not_started_is_taken_back():
    with Lane() as lane:
        hold, busy = threading.Event(), threading.Event()

        def chain():
            busy.set()
            hold.wait(5)  # the lane is inside this piece while the offer comes
            yield None

        lane.start(chain())
        busy.wait(5)
        names: list[str] = []
        result = lane.share(lambda: "a", lambda: names.append(threading.current_thread().name) or "b")
        hold.set()
        lane.join()
    assert result == ("a", "b")
    assert names == [threading.current_thread().name]


def test_a_chain_waits_for_its_mark_and_offers_run_between_its_pieces():
    log: list[str] = []
    with Lane() as lane:
        def chain():
            for step in (1, 2):
                yield step  # go on only once the caller reached `step`
                log.append(f"piece {step}")

        lane.start(chain())
        offer_ran = lane.share(lambda: None, lambda: log.append("offer"))
        assert log == ["offer"]  # piece 1 waits for mark 1: only the offer ran
        for mark in (1, 2):
            lane.release(mark)
        lane.join()
    assert offer_ran == (None, None)
    assert log == ["offer", "piece 1", "piece 2"]


def test_a_failing_chain_raises_on_join():
    def chain():
        yield None
        raise ValueError("intent part failed")

    with Lane() as lane:
        lane.start(chain())
        with pytest.raises(ValueError, match="intent part failed"):
            lane.join()
        lane.start(iter([None]))  # the lane is free again
        lane.join()


def test_a_failing_caller_stops_a_waiting_chain():
    closed = threading.Event()

    def chain():
        try:
            yield 5  # waits for a mark the caller never reaches
            yield None
        finally:
            closed.set()

    with pytest.raises(RuntimeError, match="token part failed"), Lane() as lane:
        lane.start(chain())
        raise RuntimeError("token part failed")
    assert closed.is_set()


def test_one_chain_at_a_time():
    with Lane() as lane:
        lane.start(iter([1]))
        with pytest.raises(RuntimeError, match="already running"):
            lane.start(iter([]))
        lane.release(1)
        lane.join()
