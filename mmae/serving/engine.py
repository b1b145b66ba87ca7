"""The speech engine behind `mmae serve`: sentences from many requests, batched.

Requests split their text into sentences and submit each one as a job.
Worker threads (two by default) run the model: each takes the jobs waiting
after a short, bounded wait (`max_wait_ms`), at most `max_batch` of them
with the same speaking rate, and speaks them in one call of its backend
(`mmae.serving.backends`: a run's `Synthesizer`, or an exported SavedModel).
Two workers keep both cores of a small CPU busy, which one model call alone
does not (bench/serve_bench measures it).

Jobs that start a request's audio (its first sentence) go before the others,
and while a batch of first sentences runs, the other worker takes first
sentences only: a paragraph never delays any request's first audio, its own
included. A batch is the oldest job and the jobs closest to it in length,
which pads less. A job whose request went away is skipped.

The event loop never runs the model: `submit` returns a
`concurrent.futures.Future` to await with `asyncio.wrap_future`.
"""

import concurrent.futures
import dataclasses
import itertools
import logging
import threading
import time

logger = logging.getLogger(__name__)


class QueueFullError(RuntimeError):
    """The engine already holds `max_queue` sentences; try again later."""


@dataclasses.dataclass
class Job:
    item: object  # a sentence, as the backend reads it
    speaking_rate: float
    speaker_id: int
    first: bool  # the first sentence of its request
    order: int  # arrival order
    future: concurrent.futures.Future = dataclasses.field(default_factory=concurrent.futures.Future)


class SpeechEngine:
    """Batches sentence jobs onto model threads.

    Args:
        backend: a `SynthesizerBackend` or `SavedModelBackend`.
        max_batch: most sentences in one model call (1: no batching).
        max_wait_ms: how long a worker waits for more jobs once one came.
        max_queue: most sentences waiting or running; `submit` refuses more.
        workers: model calls that may run at once, each on its own thread.
    """

    def __init__(self, backend, max_batch=8, max_wait_ms=5.0, max_queue=256, workers=2):
        self.backend = backend
        self.max_batch = max(1, int(max_batch))
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.workers = max(1, int(workers))
        self._jobs = []
        self._order = itertools.count()
        self._condition = threading.Condition()
        self._running = 0
        self._first_running = 0  # running batches that hold first sentences
        self._stopping = False
        self._threads = []
        self.batches = 0
        self.sentences = 0

    @property
    def queue_depth(self):
        """Sentences waiting or being spoken."""
        with self._condition:
            return len(self._jobs) + self._running

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def start(self):
        """Starts the worker threads (a `with` block starts and stops them too)."""
        if not self._threads:
            self._threads = [
                threading.Thread(target=self._work, name=f"mmae-speech-{i}", daemon=True)
                for i in range(self.workers)
            ]
            for thread in self._threads:
                thread.start()
        return self

    def stop(self, timeout=None):
        """Speaks what is queued, then ends the worker threads."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def warm_up(self):
        """One sentence through the model, so the first request does not pay for tracing."""
        self.backend.warm_up()

    def submit(self, items, speaking_rate=1.0, speaker_id=0):
        """Queues a request's sentences; returns their futures of float32 waveforms, in order.

        Raises:
            QueueFullError: the engine holds `max_queue` sentences already.
        """
        with self._condition:
            if self._stopping:
                raise QueueFullError("The server is shutting down.")
            if len(self._jobs) + self._running + len(items) > self.max_queue:
                raise QueueFullError(
                    f"The speech queue is full ({self.max_queue} sentences); try again shortly."
                )
            jobs = [
                Job(item, float(speaking_rate), int(speaker_id), i == 0, next(self._order))
                for i, item in enumerate(items)
            ]
            self._jobs.extend(jobs)
            self._condition.notify_all()
        return [job.future for job in jobs]

    # -- the model threads -------------------------------------------------

    def _work(self):
        while True:
            with self._condition:
                while not self._startable():
                    if self._stopping and not self._jobs:
                        return
                    self._condition.wait()
            # A short wait lets concurrent requests join this batch.
            if self.max_batch > 1 and self.max_wait > 0:
                deadline = time.monotonic() + self.max_wait
                with self._condition:
                    while len(self._jobs) < self.max_batch and not self._stopping:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._condition.wait(left)
            batch = self._take_batch()
            if batch:
                self._run(batch)

    def _startable(self):
        """Whether a job may start now (call holding the condition)."""
        self._jobs = [job for job in self._jobs if not job.future.cancelled()]
        if self._first_running:
            return any(job.first for job in self._jobs)
        return bool(self._jobs)

    def _take_batch(self):
        with self._condition:
            if not self._startable():
                return []
            # Requests' first sentences go first, then the oldest jobs.
            ready = sorted(self._jobs, key=lambda job: (not job.first, job.order))
            # While requests wait for their first audio, a batch is only of
            # first sentences: the rest of a paragraph would delay them.
            if ready[0].first:
                ready = [job for job in ready if job.first]
            # The oldest job, and those closest to it in length: a batch is
            # padded to its longest sentence, so like lengths waste less.
            oldest = ready[0]
            alike = [job for job in ready[1:] if job.speaking_rate == oldest.speaking_rate]
            alike.sort(key=lambda job: abs(len(job.item) - len(oldest.item)))
            batch = [oldest, *alike[: self.max_batch - 1]]
            taken = {id(job) for job in batch}
            self._jobs = [job for job in self._jobs if id(job) not in taken]
            batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
            self._running += len(batch)
            self._first_running += any(job.first for job in batch)
            return batch

    def _run(self, batch):
        try:
            audio = self.backend.speak(
                [job.item for job in batch],
                batch[0].speaking_rate,
                [job.speaker_id for job in batch],
            )
        except Exception as error:  # every waiting request hears of it
            logger.exception("Speaking a batch of %d sentences failed.", len(batch))
            for job in batch:
                job.future.set_exception(error)
        else:
            for job, waveform in zip(batch, audio, strict=True):
                job.future.set_result(waveform)
            with self._condition:
                self.batches += 1
                self.sentences += len(batch)
        finally:
            with self._condition:
                self._running -= len(batch)
                self._first_running -= any(job.first for job in batch)
                self._condition.notify_all()
