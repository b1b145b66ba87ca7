"""One writer per run directory.

A training holds `RUN/lock` while it writes the run; a second training of
the same directory stops at once with a message naming the holder. On a
local disk the lock is an `flock` on that file, which the kernel releases
when the process dies, even by `kill -9`, so it is never left stale; the
file records the holder's pid, host and start time for the message. On a
remote file system (`gs://`), where there is no flock, the file alone is
the lock: one whose process is gone (same host, no such pid) is taken over.

Example:

>>> with RunLock("runs/sample"):
...     ...  # train
"""

import datetime
import errno
import json
import logging
import os
import socket

import tensorflow as tf

__all__ = ["RunLock", "RunLockedError"]

logger = logging.getLogger(__name__)


class RunLockedError(RuntimeError):
    """Another training is writing to this run directory."""


class RunLock:
    """The lock of one run directory; a context manager."""

    def __init__(self, run_dir):
        self.run_dir = str(run_dir)
        self.path = os.path.join(self.run_dir, "lock")
        self._fd = None
        self._remote = "://" in self.run_dir

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc_info):
        self.release()

    def acquire(self):
        tf.io.gfile.makedirs(self.run_dir)
        holder = self._acquire_remote() if self._remote else self._acquire_local()
        if holder is not None and not _alive(holder):
            logger.warning(
                "Took over %s from %s, which is no longer running.", self.path, _describe(holder)
            )
        self._write({"pid": os.getpid(), "host": socket.gethostname(), "since": _now()})

    def release(self):
        if self._remote:
            if tf.io.gfile.exists(self.path) and _read(self.path).get("pid") == os.getpid():
                tf.io.gfile.remove(self.path)
            return
        if self._fd is not None:
            os.unlink(self.path)  # while still locked, so nobody locks the old file
            os.close(self._fd)
            self._fd = None

    def _acquire_local(self):
        """flock on RUN/lock; returns what the file said before (a dead holder) or None."""
        import fcntl

        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(fd)
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                raise RunLockedError(self._message(_read(self.path))) from None
            # The holder may have removed the file between our open and flock.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                previous = _read(self.path)
                return previous or None
            os.close(fd)

    def _acquire_remote(self):
        if not tf.io.gfile.exists(self.path):
            return None
        holder = _read(self.path)
        if _alive(holder):
            raise RunLockedError(self._message(holder))
        return holder

    def _write(self, record):
        text = json.dumps(record) + "\n"
        if self._remote:
            with tf.io.gfile.GFile(self.path, "w") as f:
                f.write(text)
            return
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, text.encode(), 0)

    def _message(self, holder):
        return (
            f"{self.run_dir} is being trained by {_describe(holder)}. Wait for it to finish or "
            f"stop it, or train into another --run-dir. (If that training is gone, delete "
            f"{self.path}.)"
        )


def _alive(holder):
    """Whether the holder's process still runs (a holder on another host is assumed alive)."""
    pid = holder.get("pid")
    if not isinstance(pid, int):
        return False
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _describe(holder):
    if not holder:
        return "another process"
    return f"pid {holder.get('pid')} on {holder.get('host')} (since {holder.get('since')})"


def _read(path):
    try:
        with tf.io.gfile.GFile(path) as f:
            return json.loads(f.read() or "{}")
    except (ValueError, tf.errors.NotFoundError, OSError):
        return {}


def _now():
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")
