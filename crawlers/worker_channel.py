"""A bounded one-way channel from a forked worker process to its parent that cannot hang when
the worker dies.

``multiprocessing.Queue`` keeps the parent's copy of its pipe's write end open, so a worker
killed half-way through writing a message (the OOM killer, ``os._exit``, a segfault in a C
parser) leaves the parent blocked for ever in ``get``, reading bytes that never come. Here the
parent drops its write end as soon as the worker has started: the worker is then the pipe's
only writer, and a message it leaves unfinished reads as end of file.

Like the queue it replaces, the worker's ``put`` returns as soon as the item is buffered (a
sender thread pickles and writes it), and at most ``maxsize`` items are in flight.
"""

from __future__ import annotations

import os
import queue
import threading
from multiprocessing.context import BaseContext
from typing import Any

_END = object()  # tells the worker's sender thread to stop


class WorkerGone(Exception):
    """The worker closed the channel (exited or died), possibly part-way through a message."""


class Channel:
    """Create it in the parent before forking the worker; the worker calls ``put`` and then
    ``finish``; the parent calls ``worker_started`` once, then ``get`` and finally ``close``."""

    def __init__(self, context: BaseContext, maxsize: int) -> None:
        self.maxsize = maxsize
        self._reader, self._writer = context.Pipe(duplex=False)
        self._slots = context.BoundedSemaphore(maxsize)
        self._parent_pid = os.getpid()
        self._buffer: queue.SimpleQueue[Any] | None = None
        self._sender: threading.Thread | None = None

    # -- parent side ------------------------------------------------------------------------
    def worker_started(self) -> None:
        """Leave the worker the only writer, so its death reads as end of file here."""
        self._writer.close()

    def get(self, timeout: float) -> Any:
        """The next item; ``queue.Empty`` after ``timeout`` seconds without one; ``WorkerGone``
        once the worker has closed its end (also when it died in the middle of a message)."""
        if not self._reader.poll(timeout):
            raise queue.Empty
        try:
            item = self._reader.recv()
        except (EOFError, OSError) as exc:
            raise WorkerGone(str(exc) or "end of file") from exc
        self._slots.release()
        return item

    def close(self) -> None:
        self._reader.close()

    # -- worker side ------------------------------------------------------------------------
    def put(self, item: Any) -> None:
        """Buffer ``item`` for the parent, waiting while ``maxsize`` items are in flight. A worker
        whose parent has gone away exits rather than wait for ever."""
        while not self._slots.acquire(timeout=1.0):
            if os.getppid() != self._parent_pid:
                os._exit(1)
        if self._buffer is None:
            self._buffer = queue.SimpleQueue()
            self._sender = threading.Thread(target=self._send_all, name="channel-sender", daemon=True)
            self._sender.start()
        self._buffer.put(item)

    def finish(self) -> None:
        """Worker: write out everything ``put`` so far, then close the worker's end."""
        if self._buffer is not None and self._sender is not None:
            self._buffer.put(_END)
            self._sender.join()
        self._writer.close()

    def in_flight(self) -> int:
        """Items put and not yet taken by the parent. macOS cannot count them (it has no
        ``sem_getvalue``): there this raises, as ``multiprocessing.Queue.qsize`` does."""
        return self.maxsize - self._slots.get_value()

    def _send_all(self) -> None:
        assert self._buffer is not None
        while (item := self._buffer.get()) is not _END:
            try:
                self._writer.send(item)
            except OSError:  # the parent closed its end: nobody is reading any more
                return
