"""Which `tf.distribute` strategy and mixed-precision policy a run uses.

The choice follows the machine unless asked otherwise:

- `tpu` given: `TPUStrategy` on that TPU: "local" on a TPU VM (Colab's TPU
  runtimes are TPU VMs), a name or a `grpc://` address, or "auto": whatever
  `find_tpu` finds, and the default strategy with a warning when it finds
  none or the TPU does not start (so one notebook runs with and without).
- `TF_CONFIG` names more than one worker: `MultiWorkerMirroredStrategy`.
- more than one GPU, or `strategy="mirrored"`: `MirroredStrategy` over all
  GPUs (over all logical CPUs when there is no GPU, which is how it is tested).
- otherwise the default strategy (one device).

Example:

>>> strategy = select_strategy()
>>> keras.mixed_precision.set_global_policy(precision_policy("auto", strategy))
"""

import glob
import json
import logging
import os
import socket

import tensorflow as tf

logger = logging.getLogger(__name__)

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")


def select_strategy(strategy=None, tpu=None):
    """Returns the `tf.distribute.Strategy` for this machine (see the module docstring).

    Args:
        strategy: a `tf.distribute.Strategy` (returned as is) or one of
            "auto" (default), "default", "mirrored", "multi_worker", "tpu".
        tpu: a TPU name or address for `TPUClusterResolver`, "local", or
            "auto" (see `find_tpu`; falls back to the default strategy);
            implies "tpu".
    """
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    strategy = strategy or "auto"
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}.")
    if tpu is not None or strategy == "tpu":
        return _tpu_strategy(tpu)
    if strategy == "auto":
        # Decided before any TF call that initializes devices: a multi-worker
        # strategy must be created before the runtime starts.
        if tf_config_workers() > 1:
            strategy = "multi_worker"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            strategy = "mirrored"
        else:
            strategy = "default"
    if strategy == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if strategy == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        devices = devices or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def find_tpu():
    """The TPU this machine can use, for `TPUClusterResolver`; None if there is none.

    `TPU_NAME` if set; an older Colab TPU runtime's `COLAB_TPU_ADDR`; "local"
    on a TPU VM (its chips appear as /dev/accel* or, from v5e on, /dev/vfio/N).
    """
    if os.environ.get("TPU_NAME"):
        return os.environ["TPU_NAME"]
    if os.environ.get("COLAB_TPU_ADDR"):
        return "grpc://" + os.environ["COLAB_TPU_ADDR"]
    if glob.glob("/dev/accel[0-9]*") or glob.glob("/dev/vfio/[0-9]*"):
        return "local"
    return None


def _tpu_strategy(tpu):
    # "auto" may fall back; strategy="tpu" without a name must find one.
    automatic = tpu == "auto"
    target = find_tpu() if tpu in (None, "", "auto") else tpu
    if target is None:
        if not automatic:
            raise ValueError("strategy='tpu' but no TPU found: pass its name or address.")
        logger.warning("No TPU found (tpu='auto'): using the default strategy.")
        return tf.distribute.get_strategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=target)
        # Connecting points this process's eager context at the TPU host for
        # good: when the host does not answer, later work here (tf.data
        # included) fails. So it is probed first.
        _check_reachable(resolver.master())
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        if not automatic:
            raise
        logger.warning("The TPU %r did not start (%s): using the default strategy.", target, error)
        return tf.distribute.get_strategy()
    return tf.distribute.TPUStrategy(resolver)


def _check_reachable(master, timeout_s=5.0):
    """Raises RuntimeError when a remote TPU host (grpc://HOST:PORT) does not accept a connection."""
    address = master[len("grpc://") :] if master.startswith("grpc://") else ""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return  # a TPU VM's own chips ("local"), or an address the resolver checks itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise RuntimeError(f"{master} is not reachable ({error})") from error


def tf_config_workers():
    """The number of tasks (chief and workers) that `TF_CONFIG` describes; 0 without one."""
    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    return len(cluster.get("chief", [])) + len(cluster.get("worker", []))


def num_workers(strategy):
    """How many hosts feed this strategy's replicas (1 unless multi-worker)."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return max(1, tf_config_workers())
    return 1


def is_chief(strategy):
    """Whether this process writes the run's files (config, logs, checkpoints).

    Every process takes part in training; only the chief (task "chief", or
    worker 0 of a cluster without one) keeps what it writes.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type in (None, "chief"):
        return True
    cluster = resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in cluster


def precision_policy(setting, strategy):
    """The Keras dtype policy name for `train.mixed_precision` on this strategy.

    "auto" is bfloat16 on TPU (native there, no loss scaling), float16 on GPU
    (with loss scaling) and float32 on CPU, where neither is faster.
    """
    if setting == "auto":
        if isinstance(strategy, tf.distribute.TPUStrategy):
            return "mixed_bfloat16"
        return "mixed_float16" if tf.config.list_physical_devices("GPU") else "float32"
    return "float32" if setting == "none" else setting
