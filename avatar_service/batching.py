"""The one batching mechanism: a worker thread that runs queued work in batches, most urgent first.

Both model stages that serve many sessions use it: the frame engine (runtime/engine.py: audio encoder,
sampler and decoder) and Whisper's encoder (model/whisper.py). Work is ordered by deadline (earliest
first, a monotonic time: for a frame, its session's start plus its pts), so a session that sent 30 s of
audio at once cannot starve a paced real-time one: the paced session's next frame is due now, the bulk
session's are due seconds from now (earliest-deadline-first; the bulk sender gets what is left).

A batch takes the most urgent item, then the most urgent queued items of the same key (work that can
share one call: same step count, same window length) up to `max_batch`, waiting up to `wait_s` for more
to arrive first when fewer than `max_batch` are queued.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import Callable, Generic, Hashable, Iterable, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class Batcher(Generic[T]):
    def __init__(self, run: Callable[[Hashable, list[T]], None], *, name: str, max_batch: int = 32,
                 wait_s: float = 0.0, key: Callable[[T], Hashable] = lambda item: None,
                 deadline: Callable[[T], float] = lambda item: 0.0):
        self._run_batch, self._key, self._deadline = run, key, deadline
        self.max_batch, self.wait_s = max_batch, wait_s
        self.calls = 0  # batches run, one `run` call each (for tests and profiles)
        self._heap: list[tuple[float, int, T]] = []
        self._seq = itertools.count()  # equal deadlines keep submission order
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        return len(self._heap)

    def submit(self, items: Iterable[T]) -> None:
        with self._cv:
            for item in items:
                heapq.heappush(self._heap, (self._deadline(item), next(self._seq), item))
            self._cv.notify()

    def close(self, timeout_s: float = 10.0) -> None:
        """Run what is queued, then stop the thread."""
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join(timeout=timeout_s)

    def _next_batch(self) -> tuple[Hashable, list[T]] | None:
        with self._cv:
            while not self._heap and not self._closed:
                self._cv.wait()
            if not self._heap:
                return None
            if self.wait_s > 0 and len(self._heap) < self.max_batch:
                end = time.monotonic() + self.wait_s
                while len(self._heap) < self.max_batch and not self._closed and (left := end - time.monotonic()) > 0:
                    self._cv.wait(left)
            first = heapq.heappop(self._heap)
            key = self._key(first[2])
            batch, other = [first[2]], []
            while self._heap and len(batch) < self.max_batch:
                entry = heapq.heappop(self._heap)
                (batch.append(entry[2]) if self._key(entry[2]) == key else other.append(entry))
            for entry in other:
                heapq.heappush(self._heap, entry)
            return key, batch

    def _loop(self) -> None:
        while (nxt := self._next_batch()) is not None:
            self.calls += 1
            try:
                self._run_batch(*nxt)
            except Exception:  # `run` reports to its callers itself; this only keeps the thread serving
                log.exception("batch runner failed")
