"""Progress bars whose rate and time left are measured after warm-up.

The first items of a job pay for one-off work: tracing and compiling a
`tf.function`, building a thread's featurizer, starting a pool. A plain tqdm
bar extrapolates from them, so a 20-second job first reads "1:32:59" left.
These bars show "?" until `warmup` items are done, then measure the rate from
that point on.

Example:

>>> for batch in progress_bar(batches, desc="synthesize", unit="batch"):
...     synthesize(batch)
>>> bar = progress_bar(total=260, unit="clip", warmup=2)  # two workers warm up
>>> bar.update(1)
"""

import tqdm.std


def progress_bar(iterable=None, *, warmup=1, **kwargs):
    """A tqdm bar (same arguments) with no estimate until `warmup` items are done.

    Args:
        iterable: what to iterate over, or None to call `update` by hand.
        warmup: items (counted from `initial`) whose time is left out of the
            rate: the first one, or one per worker that each warm up.
        **kwargs: tqdm's arguments (`total`, `initial`, `desc`, `unit`,
            `disable`, `smoothing`, ...).
    """
    return _WarmUpBar(iterable, warmup=warmup, **kwargs)


class _WarmUpBar(tqdm.std.tqdm):
    def __init__(self, iterable=None, *, warmup=1, **kwargs):
        # (time, count) when warm-up ended; None while warming up. Set first:
        # tqdm's __init__ already draws the bar.
        self.warm_since = None
        super().__init__(iterable, **kwargs)
        self.warm_at = self.n + warmup

    def update(self, n=1):
        displayed = super().update(n)
        if self.warm_since is None and not self.disable and self.n >= self.warm_at:
            self.warm_since = (self._time(), self.n)
            # As tqdm.reset does, without touching the count or the elapsed time.
            self.last_print_t, self.last_print_n = self.warm_since
            self._ema_dn = tqdm.std.EMA(self.smoothing)
            self._ema_dt = tqdm.std.EMA(self.smoothing)
        return displayed

    @property
    def format_dict(self):
        values = super().format_dict
        if self.disable or (self.warm_since is not None and values["rate"] is not None):
            return values
        # No smoothed rate yet (or smoothing=0): the average since warm-up.
        rate = None
        if self.warm_since is not None:
            since_t, since_n = self.warm_since
            elapsed = self._time() - since_t
            if self.n > since_n and elapsed > 0:
                rate = (self.n - since_n) / elapsed
        values["rate"] = rate
        # Without a rate tqdm divides n - initial by the elapsed time; with
        # initial = n that is 0, which it shows as "?".
        if rate is None:
            values["initial"] = self.n
        return values
