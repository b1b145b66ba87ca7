"""The one test every mmae layer and model part goes through (keras-hub's `run_layer_test`).

Test files import it by module name, as they import conftest's helpers.

Example:

>>> run_layer_test(
...     ConvBlock,
...     init_kwargs={"hidden_dim": 8, "kernel_size": 3},
...     input_data=(hidden, mask),
...     call_kwargs={"training": False},
...     expected_output_shape=(2, 6, 8),
... )
"""

import contextlib
import inspect
import json
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")


@contextlib.contextmanager
def global_dtype_policy(name):
    """Sets the global Keras dtype policy for the block, then restores the previous one."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    *,
    call_kwargs=None,
    expected_output_shape=None,
    expected_num_trainable_weights=None,
    mixed_precision_output_dtype=None,
    check_gradients=True,
):
    """Builds, calls, round-trips, saves and runs one layer class under mixed precision.

    Checks, in order: every `__init__` argument is an attribute of the same
    name and a key of `get_config()` (with the value given in `init_kwargs`);
    a float32 call builds the layer and gives finite float32 outputs of
    `expected_output_shape`; every trainable weight gets a finite gradient;
    `from_config(get_config())` gives the same config and, with the
    original's weights, the same outputs; a `.keras` file saved and loaded
    gives the same outputs; and under each global mixed policy the variables
    stay float32, the outputs are finite and have the dtype the layer
    documents, and every sublayer computes in the layer's dtype or in
    float32. A layer that follows the global policy is run once more with the
    policy passed as its `dtype` while the global policy is the other mixed
    one, so that a sublayer reading the global policy instead of its
    parent's shows up.

    Args:
        layer_cls: a `keras.layers.Layer` or `keras.Model` subclass.
        init_kwargs: the constructor's keyword arguments (tiny sizes).
        input_data: what the layer is called on: a tuple is spread over the
            positional arguments, e.g. `(hidden, mask)`; anything else (an
            array, or a dict for a model whose `call` takes one) is the one
            positional argument. NumPy arrays or tensors, float32 for floats.
        call_kwargs: other keyword arguments of every call, not tensors, e.g.
            `{"training": False}` so that dropout leaves outputs comparable.
        expected_output_shape: the outputs' shapes, as tuples in the
            outputs' structure, e.g. `((2, 5, 16), (2, 5, 8))` for two outputs.
        expected_num_trainable_weights: guards against added or lost weights.
        mixed_precision_output_dtype: the dtype of every float output under
            a mixed policy, for a layer that documents one (e.g. "float32");
            by default the policy's compute dtype.
        check_gradients: require a gradient for every trainable weight from
            the sum of the outputs; off for a model whose `call` takes only
            some of its parts.

    Returns:
        The outputs of the float32 call, for checks specific to the layer.
    """
    args = input_data if isinstance(input_data, tuple) else (input_data,)
    call_kwargs = dict(call_kwargs or {})
    with global_dtype_policy("float32"):
        layer = layer_cls(**init_kwargs)
        _check_init_arguments_in_config(layer_cls, layer, init_kwargs)
        outputs = layer(*args, **call_kwargs)
        assert layer.built, f"{layer_cls.__name__} is not built after a call"
        if expected_output_shape is not None:
            shapes = tf.nest.map_structure(lambda tensor: tuple(tensor.shape), outputs)
            assert shapes == expected_output_shape, f"output shapes {shapes}"
        if expected_num_trainable_weights is not None:
            assert len(layer.trainable_weights) == expected_num_trainable_weights
        _check_outputs(outputs, "float32", "float32 call")
        if check_gradients:
            _check_gradients(layer, args, call_kwargs)
        _check_config_round_trip(layer, args, call_kwargs, outputs)
        _check_save_and_load(layer, args, call_kwargs, outputs)
    for policy in MIXED_POLICIES:
        (other,) = set(MIXED_POLICIES) - {policy}
        with global_dtype_policy(policy):
            mixed = layer_cls(**init_kwargs)
            _check_mixed_precision(mixed, args, call_kwargs, mixed_precision_output_dtype)
        if mixed.dtype_policy.name == policy:  # not a layer that is float32 on purpose
            with global_dtype_policy(other):
                explicit = layer_cls(**{**init_kwargs, "dtype": policy})
                _check_mixed_precision(explicit, args, call_kwargs, mixed_precision_output_dtype)
    return outputs


def _check_init_arguments_in_config(layer_cls, layer, init_kwargs):
    """keras-hub's layer contract: every argument kept under its name and in the config."""
    config = layer.get_config()
    for name, parameter in inspect.signature(layer_cls.__init__).parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        assert name in config, f"{layer_cls.__name__}.get_config() lacks {name!r}"
        assert hasattr(layer, name), f"{layer_cls.__name__} keeps no attribute {name!r}"
        if name in init_kwargs:
            assert config[name] == getattr(layer, name) == init_kwargs[name], name
    json.dumps(config)  # a config must be plain data


def _check_outputs(outputs, float_dtype, what):
    """Every float output has `float_dtype` and only finite values."""
    for tensor in tf.nest.flatten(outputs):
        if tensor.dtype.is_floating:
            assert tensor.dtype == float_dtype, f"{what}: {tensor.dtype}, expected {float_dtype}"
            assert np.all(np.isfinite(tf.cast(tensor, tf.float32).numpy())), f"{what}: not finite"


def _float_sum(outputs):
    floats = [tensor for tensor in tf.nest.flatten(outputs) if tensor.dtype.is_floating]
    return tf.add_n([tf.reduce_sum(tf.cast(tensor, tf.float32)) for tensor in floats])


def _check_gradients(layer, args, call_kwargs):
    with tf.GradientTape() as tape:
        total = _float_sum(layer(*args, **call_kwargs))
    weights = layer.trainable_weights
    for weight, gradient in zip(weights, tape.gradient(total, weights), strict=True):
        assert gradient is not None, f"{weight.path} gets no gradient"
        if isinstance(gradient, tf.IndexedSlices):
            gradient = gradient.values
        assert np.all(np.isfinite(gradient.numpy())), f"{weight.path}: gradient not finite"


def _assert_equal_outputs(expected, actual, what):
    tf.nest.assert_same_structure(expected, actual)
    for want, got in zip(tf.nest.flatten(expected), tf.nest.flatten(actual), strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=what)


def _check_config_round_trip(layer, args, call_kwargs, outputs):
    config = layer.get_config()
    rebuilt = type(layer).from_config(config)
    assert rebuilt.get_config() == config
    rebuilt(*args, **call_kwargs)  # builds it
    rebuilt.set_weights(layer.get_weights())
    _assert_equal_outputs(outputs, rebuilt(*args, **call_kwargs), "from_config(get_config())")
    if type(layer).build is not keras.layers.Layer.build:
        # Keras rebuilds a layer that has a build() from its saved build
        # config (the shapes read back as lists) before reading its weights.
        saved = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
        revived = keras.saving.deserialize_keras_object(saved)
        assert revived.built and len(revived.weights) == len(layer.weights)


def _check_save_and_load(layer, args, call_kwargs, outputs):
    """Through a `.keras` file: a model as it is, a layer inside a `LayerModel`."""
    if isinstance(layer, keras.Model):
        model, model_args = layer, args
    else:
        model = LayerModel(layer, _specs(args), call_kwargs)
        model_args = (list(args),)
        call_kwargs = {}
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "layer.keras")
        model(*model_args, **call_kwargs)
        keras.saving.save_model(model, path)
        loaded = keras.saving.load_model(path)
    inner = loaded if isinstance(layer, keras.Model) else loaded.layer
    assert type(inner) is type(layer)
    _assert_equal_outputs(outputs, loaded(*model_args, **call_kwargs), "after save and load")


def _check_mixed_precision(layer, args, call_kwargs, output_dtype):
    policy = layer.dtype_policy.name
    outputs = layer(*args, **call_kwargs)
    _check_outputs(outputs, output_dtype or layer.compute_dtype, f"{policy} call")
    for variable in layer.variables:
        if "float" in variable.dtype:
            assert variable.dtype == "float32", f"{policy}: {variable.path} is {variable.dtype}"
    for sublayer in layer._flatten_layers(include_self=False):
        if isinstance(sublayer, (keras.Sequential, keras.layers.InputLayer)):
            continue  # Containers and their inputs only pass tensors on; no compute.
        assert sublayer.dtype_policy.name in (policy, "float32"), (
            f"{policy}: sublayer {sublayer.name} runs under {sublayer.dtype_policy.name}"
        )


def _specs(structure):
    """Tensors -> "dtype:dim,dim" strings, plain data for a config (strings are nest leaves)."""
    return tf.nest.map_structure(
        lambda x: f"{tf.as_dtype(x.dtype).name}:{','.join(map(str, np.shape(x)))}", structure
    )


def _ones(specs):
    def ones(spec):
        dtype, shape = spec.split(":")
        return tf.ones([int(size) for size in shape.split(",") if size], dtype)

    return tf.nest.map_structure(ones, specs)


@keras.saving.register_keras_serializable(package="mmae_tests")
class LayerModel(keras.Model):
    """One layer as a model, so that it goes through a `.keras` file.

    A layer with several inputs has no single `input_shape` to be rebuilt
    from, so on loading it is built, before its weights are read, by a call
    on ones of the recorded input shapes, as the mmae models' `build()` runs
    a dummy batch.

    Args:
        layer: the layer.
        input_specs: `_specs(args)` of the positional arguments.
        call_kwargs: the other keyword arguments of every call.
    """

    def __init__(self, layer, input_specs, call_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer
        self.input_specs = input_specs
        self.call_kwargs = dict(call_kwargs or {})

    def build(self, input_shape=None):
        self.layer(*_ones(self.input_specs), **self.call_kwargs)

    def call(self, inputs):
        return self.layer(*inputs, **self.call_kwargs)

    def get_config(self):
        layer = keras.saving.serialize_keras_object(self.layer)
        # build() builds the layer by a call, as the mmae models build their
        # parts; most parts have no build() of their own to use a build config.
        layer.pop("build_config", None)
        config = super().get_config()
        config.update(
            layer=layer,
            input_specs=self.input_specs,
            call_kwargs=self.call_kwargs,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        layer = keras.saving.deserialize_keras_object(config.pop("layer"))
        return cls(layer, **config)
