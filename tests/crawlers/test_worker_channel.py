"""The channel from the extract parser's worker process: bounded, ordered, and never a hang when
the worker dies, even half-way through a message (what ``multiprocessing.Queue`` hangs on)."""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from crawlers.worker_channel import Channel, WorkerGone

CONTEXT = multiprocessing.get_context("fork")


def _start(target: Any, *args: Any) -> tuple[Channel, Any]:
    channel = Channel(CONTEXT, maxsize=2)
    worker = CONTEXT.Process(target=target, args=(channel, *args), daemon=True)
    worker.start()
    channel.worker_started()
    return channel, worker


def _send(channel: Channel, items: list[Any]) -> None:
    for item in items:
        channel.put(item)
    channel.finish()


def _die_mid_message(channel: Channel) -> None:
    channel.put("first")
    channel.put(b"x" * 8_000_000)  # far more than a pipe holds: the sender thread blocks writing it
    time.sleep(0.5)
    os._exit(3)


def _get_all(channel: Channel, out: list[Any]) -> None:
    try:
        while True:
            out.append(channel.get(timeout=1.0))
    except WorkerGone as exc:
        out.append(exc)
    except queue.Empty:
        out.append("empty")


def test_items_arrive_in_order_and_the_end_reads_as_worker_gone() -> None:
    items = [{"n": n, "text": "record " * n} for n in range(50)]
    channel, worker = _start(_send, items)
    got = [channel.get(timeout=10.0) for _ in items]
    worker.join(10.0)
    assert got == items and worker.exitcode == 0
    with pytest.raises(WorkerGone):
        channel.get(timeout=1.0)
    channel.close()


def test_at_most_maxsize_items_are_in_flight() -> None:
    channel, worker = _start(_send, list(range(6)))
    deadline = time.monotonic() + 10
    while channel.in_flight() < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # a worker that ignored the bound would have put more by now
    assert channel.in_flight() == 2
    assert [channel.get(timeout=10.0) for _ in range(6)] == list(range(6))
    worker.join(10.0)
    assert channel.in_flight() == 0 and worker.exitcode == 0
    channel.close()


def test_a_worker_dying_half_way_through_a_message_is_an_error_not_a_hang() -> None:
    channel, worker = _start(_die_mid_message)
    worker.join(10.0)
    assert worker.exitcode == 3  # it died with part of the 8 MB message in the pipe
    got: list[Any] = []
    reader = threading.Thread(target=_get_all, args=(channel, got), daemon=True)
    reader.start()
    reader.join(15.0)
    assert not reader.is_alive(), "the parent hung reading a message the dead worker never finished"
    assert got[0] == "first" and isinstance(got[1], WorkerGone) and len(got) == 2
    channel.close()


def _orphan_a_blocked_worker(pid_file: Path) -> None:
    """An intermediate parent: starts a worker that blocks on a full channel, then goes away."""
    channel = Channel(CONTEXT, maxsize=1)
    worker = CONTEXT.Process(target=_send, args=(channel, [1, 2, 3]))
    worker.start()
    channel.worker_started()
    pid_file.write_text(str(worker.pid))
    os._exit(0)


def _exited(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie nobody reaps (pid 1 in a container may not) has exited


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_a_worker_whose_parent_died_exits_instead_of_waiting_for_ever(tmp_path: Path) -> None:
    pid_file = tmp_path / "worker.pid"
    middle = CONTEXT.Process(target=_orphan_a_blocked_worker, args=(pid_file,))
    middle.start()
    middle.join(10.0)
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 15
    while not _exited(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _exited(pid)
