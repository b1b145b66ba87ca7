"""The one weight format: a TensorFlow checkpoint keyed by each weight's layer path.

A weight's key is the chain of attribute names that reaches it from the
model, with list items by index and the variable's own name last:
`text_encoder/blocks/1/attention/_query_dense/kernel`. Unlike a position in
`model.weights` or Keras's auto-generated layer names (`conv_block_7`, which
depend on what the process built first), the key only changes when the
model's structure does, and then loading says which weight no longer fits.

Training checkpoints, snapshots and the bundled pretrained models all store
their weights under `weights/<key>` in a `tf.train.Checkpoint`; training
checkpoints also hold the optimizers and the step beside them. A checkpoint
written before this format (a positional list under `model/<index>`, or a
pretrained model's `weights.npz` keyed `part/index`) is read through the
model built from its config, which lays the weights out the way they were
written.

Example:

>>> save_weights(model, "/tmp/weights", dtype="float16")   # /tmp/weights.index, .data-*
>>> load_weights(build_model(config, info), "/tmp/weights")
"""

import os

import keras
import numpy as np
import tensorflow as tf

__all__ = [
    "CheckpointError",
    "checkpoint_key",
    "load_weights",
    "read_weights",
    "save_weights",
    "verify_checkpoint",
    "weight_paths",
]

# The object the weights hang from in every checkpoint this project writes.
WEIGHTS = "weights"
_LEGACY_LIST = "model"
_VALUE = "/.ATTRIBUTES/VARIABLE_VALUE"
LEGACY_NPZ = "weights.npz"
# Attributes every Keras layer has: bookkeeping, not parts of the model.
_LAYER_ATTRIBUTES = None


class CheckpointError(ValueError):
    """A checkpoint cannot be read (damaged or missing files) or does not fit the model."""


def weight_paths(model, parts=None):
    """{key: variable} for every weight of `model` (or of the named `parts` only), in order.

    The dict is what a `tf.train.Checkpoint(weights=...)` saves.

    Args:
        model: a built Keras layer or model.
        parts: attribute names of `model` to keep (e.g. the parts synthesis
            needs); a part that is None is skipped.
    """
    named = {}
    claimed = set()
    if parts is None:
        _name_layer(model, "", named, claimed, set())
    else:
        for part in parts:
            layer = getattr(model, part)
            if layer is not None:
                _name_layer(layer, part + "/", named, claimed, set())
    return named


def _name_layer(layer, prefix, named, claimed, visited):
    if id(layer) in visited:
        return
    visited.add(id(layer))
    for name, child in _children(layer):
        _name_layer(child, f"{prefix}{name}/", named, claimed, visited)
    # What no child claimed is the layer's own (kernel, bias, embeddings).
    own = [v for v in layer.weights if id(v) not in claimed]
    for variable in own:
        key, count = prefix + variable.name, 1
        while key in named:
            key, count = f"{prefix}{variable.name}_{count}", count + 1
        named[key] = variable
        claimed.add(id(variable))


def _children(layer):
    """(attribute name, sublayer) pairs: public attributes first, then private ones."""
    global _LAYER_ATTRIBUTES
    if _LAYER_ATTRIBUTES is None:
        _LAYER_ATTRIBUTES = set(vars(keras.layers.Layer())) | {"_layers", "_tracker"}
    if isinstance(layer, keras.Sequential):
        for index, child in enumerate(layer.layers):
            yield f"layers/{index}", child
    for attribute in sorted(vars(layer), key=lambda name: (name.startswith("_"), name)):
        if attribute in _LAYER_ATTRIBUTES or attribute.startswith("__"):
            continue
        value = vars(layer)[attribute]
        if isinstance(value, keras.layers.Layer):
            yield attribute, value
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                if isinstance(item, keras.layers.Layer):
                    yield f"{attribute}/{index}", item


def checkpoint_key(path):
    """The checkpoint key of weight `path` (TensorFlow escapes '.' and '/' in object names)."""
    return f"{WEIGHTS}/{path.replace('.', '..').replace('/', '.S')}{_VALUE}"


def _path_of_key(key):
    escaped = key[len(WEIGHTS) + 1 : -len(_VALUE)]
    out, i = [], 0
    while i < len(escaped):
        if escaped[i] == "." and i + 1 < len(escaped):
            out.append("/" if escaped[i + 1] == "S" else escaped[i + 1])
            i += 2
        else:
            out.append(escaped[i])
            i += 1
    return "".join(out)


def save_weights(model, prefix, parts=None, dtype=None, max_shard_bytes=None):
    """Writes `model`'s weights (or those of `parts`) to the checkpoint `prefix`.

    Args:
        dtype: store floating-point weights in this dtype (e.g. "float16" for
            a bundled model); loading casts them back.
        max_shard_bytes: split the data into files of at most this size
            (`prefix.data-0000K-of-0000N`), which any checkpoint reader joins.

    Returns:
        The prefix written (`prefix.index`, `prefix.data-*`).
    """
    named = weight_paths(model, parts)
    if dtype is not None:
        named = {
            key: tf.Variable(tf.cast(v, dtype) if "float" in str(v.dtype) else v, name=key)
            for key, v in named.items()
        }
    options = None
    if max_shard_bytes is not None:
        policy = _WholeTensorShards(max_shard_bytes)
        options = tf.train.CheckpointOptions(experimental_sharding_callback=policy)
    return tf.train.Checkpoint(**{WEIGHTS: named}).write(prefix, options=options)


class _WholeTensorShards(tf.train.experimental.ShardingCallback):
    """Whole tensors, in order, in shards of at most `max_bytes` (a larger tensor gets its own).

    TensorFlow's `MaxShardSizePolicy` cuts tensors into slices, and its
    checkpoint reader cannot put float16 slices back together.
    """

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes

    @property
    def description(self):
        return f"whole tensors in shards of at most {self.max_bytes} bytes"

    def __call__(self, shardable_tensors):
        shards, shard, size = [], {}, 0
        for item in shardable_tensors:
            nbytes = 0 if item.dtype == tf.string else item.shape.num_elements() * item.dtype.size
            if shard and size + nbytes > self.max_bytes:
                shards.append(shard)
                shard, size = {}, 0
            shard.setdefault(item.checkpoint_key, {})[item.slice_spec] = item.tensor
            size += nbytes
        return shards + [shard] if shard else shards


def read_weights(prefix, model=None):
    """{key: numpy array} of every weight stored at `prefix`.

    A checkpoint in the old positional format (`model/<index>`) needs the
    `model` built from its config: the index is the weight's position in
    `model.weights`.

    Raises:
        CheckpointError: the files are missing, truncated or unreadable.
    """
    if _is_legacy_npz(prefix):
        return _read_legacy_npz(prefix, model)
    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
        keys = [k for k in shapes if k.startswith(WEIGHTS + "/") and k.endswith(_VALUE)]
        if keys:
            return {_path_of_key(k): reader.get_tensor(k) for k in keys}
        legacy = sorted(
            (int(k.split("/")[1]), k)
            for k in shapes
            if k.startswith(_LEGACY_LIST + "/") and k.endswith(_VALUE)
        )
        if not legacy:
            raise CheckpointError(f"{prefix} holds no model weights.")
        if model is None:
            raise CheckpointError(f"{prefix} is in the old positional format: pass its model.")
        keys = {id(v): key for key, v in weight_paths(model).items()}
        by_position = [keys[id(v)] for v in model.weights]
        if len(legacy) != len(by_position):
            raise CheckpointError(
                f"{prefix} holds {len(legacy)} weights by position; the model has "
                f"{len(by_position)}."
            )
        return {by_position[index]: reader.get_tensor(key) for index, key in legacy}
    except CheckpointError:
        raise
    except (tf.errors.OpError, IndexError, ValueError, OSError) as error:
        raise CheckpointError(f"{prefix} cannot be read: {_reason(error)}") from error


def load_weights(model, prefix, parts=None):
    """Assigns the weights stored at `prefix` to `model` (or to its `parts`).

    Every expected weight must be there with its shape; nothing is assigned
    unless all of them are.

    Raises:
        CheckpointError: unreadable files, or a weight missing, extra or of
            another shape; the message names the checkpoint and the first
            mismatched weight.
    """
    stored = read_weights(prefix, model)
    expected = weight_paths(model, parts)
    problems = []
    for key, variable in expected.items():
        if key not in stored:
            problems.append(f"{key} {tuple(variable.shape)} is not in the checkpoint")
        elif tuple(stored[key].shape) != tuple(variable.shape):
            problems.append(
                f"{key} has shape {tuple(stored[key].shape)} in the checkpoint, "
                f"{tuple(variable.shape)} in the model"
            )
    extra = [key for key in stored if key not in expected]
    if parts is None:
        problems += [f"{key} is in the checkpoint but not in the model" for key in extra]
    if problems:
        raise CheckpointError(
            f"{prefix} does not match this model ({len(problems)} mismatched weights); "
            f"first: {problems[0]}."
        )
    for key, variable in expected.items():
        variable.assign(stored[key].astype(variable.dtype))
    return prefix


def _reason(error):
    text = getattr(error, "message", None) or str(error)
    return text.strip().splitlines()[0][:300] if text.strip() else type(error).__name__


# Pretrained models packed before this format: weights.npz keyed "part/index".


def _is_legacy_npz(prefix):
    return os.path.basename(prefix) == LEGACY_NPZ


def _read_legacy_npz(path, model):
    if model is None:
        raise CheckpointError(f"{path} is in the old npz format: pass its model.")
    parts = {}
    try:
        with np.load(path) as stored:
            arrays = {key: stored[key] for key in stored.files}
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path} cannot be read: {_reason(error)}") from error
    out = {}
    for key, array in arrays.items():
        part, index = key.split("/")
        layer = getattr(model, part, None)
        if layer is None:
            raise CheckpointError(f"{path} has weights of {part!r}, which the model lacks.")
        if part not in parts:
            parts[part] = {id(v): k for k, v in weight_paths(model, [part]).items()}
        variables = layer.weights
        if int(index) >= len(variables):
            raise CheckpointError(f"{path}: {key} is past the {len(variables)} weights of {part}.")
        out[parts[part][id(variables[int(index)])]] = array
    return out


def verify_checkpoint(prefix):
    """Reads every tensor of the checkpoint at `prefix` (weights, optimizer, step).

    Raises:
        CheckpointError: a file is missing, truncated or unreadable.
    """
    try:
        reader = tf.train.load_checkpoint(prefix)
        for key in reader.get_variable_to_shape_map():
            reader.get_tensor(key)
    except (tf.errors.OpError, IndexError, ValueError, OSError) as error:
        raise CheckpointError(f"{prefix} cannot be read: {_reason(error)}") from error
