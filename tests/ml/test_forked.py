"""A forked chain hands its items over in order, with their arrays in shared memory,
runs at most its slots ahead, and never outlives a failure or its caller."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from trainkit.ml.forked import ChildFailed, ForkedChain


def _arrays(i: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(i)
    return {"x": rng.random((50 + i, 7)).astype(np.float32), "ids": np.arange(i * 3, dtype=np.int64), "i": i}


def test_items_arrive_in_order_on_views_of_shared_memory():
    def target(channel):
        for i in range(6):
            channel.put(_arrays(i))
        channel.put("end")

    with ForkedChain.start(target, slots=2) as chain:
        for i in range(6):
            item = chain.get()
            expected = _arrays(i)
            assert item["i"] == i
            np.testing.assert_array_equal(item["x"], expected["x"])
            np.testing.assert_array_equal(item["ids"], expected["ids"])
            assert not item["x"].flags.owndata  # rebuilt on the ring, not copied
            chain.release()
        assert chain.get() == "end"


def test_the_child_runs_at_most_its_slots_ahead():
    progress = multiprocessing.get_context("fork").Value("i", 0)

    def target(channel):
        for i in range(5):
            channel.put({"x": np.full(10, i)})
            with progress.get_lock():
                progress.value += 1

    with ForkedChain.start(target, slots=2) as chain:
        first = chain.get()
        time.sleep(0.5)
        assert progress.value == 2  # the third item waits for a free slot
        assert first["x"][0] == 0
        chain.release()
        deadline = time.monotonic() + 10
        while progress.value < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert progress.value == 3
        for i in range(1, 5):
            assert chain.get()["x"][0] == i
            chain.release()


def test_an_item_larger_than_a_slot_goes_through_the_pipe_whole():
    big = np.arange(10_000, dtype=np.float64)

    def target(channel):
        channel.put(big)
        channel.put(big[:3])

    with ForkedChain.start(target, slots=1, slot_bytes=4096) as chain:
        received = chain.get()
        np.testing.assert_array_equal(received, big)
        assert not chain._held  # no slot taken
        np.testing.assert_array_equal(chain.get(), big[:3])


def test_an_error_the_child_hands_over_is_the_callers_to_raise():
    def target(channel):
        try:
            raise FloatingPointError("overflow in the child")
        except FloatingPointError as error:
            channel.put(error)
            raise

    with ForkedChain.start(target) as chain:
        item = chain.get()
    assert isinstance(item, FloatingPointError) and "overflow in the child" in str(item)


def test_a_child_that_ends_early_is_a_clear_error():
    def target(channel):
        channel.put(1)
        os._exit(3)

    with ForkedChain.start(target) as chain:
        assert chain.get() == 1
        with pytest.raises(ChildFailed, match=r"ended early \(exit code 3\)"):
            chain.get()


def test_a_failing_caller_stops_the_child():
    def target(channel):
        for i in range(1000):
            channel.put(np.full(1000, i))

    with pytest.raises(KeyboardInterrupt):
        with ForkedChain.start(target, slots=1) as chain:
            chain.get()
            raise KeyboardInterrupt
    assert not chain._process.is_alive()


def test_a_daemonic_process_runs_the_chain_elsewhere(monkeypatch):
    monkeypatch.setattr(multiprocessing.current_process(), "_config",
                        {**multiprocessing.current_process()._config, "daemon": True})
    assert ForkedChain.start(lambda channel: None) is None


def test_the_child_ends_when_its_caller_is_gone(tmp_path):
    """A caller killed without a chance to stop its child (SIGKILL) leaves no child
    waiting for a slot forever."""
    script = tmp_path / "caller.py"
    script.write_text(
        "import os, sys\n"
        "import numpy as np\n"
        "from trainkit.ml.forked import ForkedChain\n"
        "def target(channel):\n"
        "    for i in range(10):\n"
        "        channel.put(np.full(10, i))\n"
        "chain = ForkedChain.start(target, slots=1)\n"
        "chain.get()\n"
        "print(chain._process.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                          cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.getcwd()})
    child = int(done.stdout.split()[0])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(child, 9)
    pytest.fail("the child outlived its caller")


def test_other_systems_and_a_ring_without_memory_run_the_chain_elsewhere(monkeypatch):
    import trainkit.ml.forked as forked

    with monkeypatch.context() as patch:
        patch.setattr(sys, "platform", "darwin")  # fork there is unsafe with system libraries
        assert ForkedChain.start(lambda channel: None) is None

    def no_memory(*args):
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(forked.mmap, "mmap", no_memory)
    assert ForkedChain.start(lambda channel: None) is None


def test_dataclasses_travel_only_when_the_caller_names_them():
    from dataclasses import dataclass

    from trainkit.ml.handover import HandoverError

    @dataclass
    class Step:
        rows: np.ndarray
        loss: float

    def target(channel):
        channel.put(Step(np.arange(4), 0.5))

    with ForkedChain.start(target, types=[Step]) as chain:
        step = chain.get()
        assert isinstance(step, Step) and step.rows.tolist() == [0, 1, 2, 3] and step.loss == 0.5
    with ForkedChain.start(target) as chain:
        refused = chain.get()
    assert isinstance(refused, HandoverError) and "Step cannot be handed over" in str(refused)
