"""Tests for mmae.alignment against plain NumPy references on small padded batches.

Tolerances: the TensorFlow code runs in float32 and the references in
float64, so every comparison allows float32 rounding. The largest error
measured on CPU is given next to each; the tolerances sit one to two orders of
magnitude above it, because sums over a few hundred terms are reordered on
other CPUs (oneDNN, AVX2 against AVX-512) and by XLA.
"""

import itertools
import math

import numpy as np
import pytest
import tensorflow as tf

from mmae import alignment

# ---------------------------------------------------------------------------
# Plain NumPy references: loops over one example at a time, float64.
# ---------------------------------------------------------------------------


def random_lengths(rng, batch, max_frames, max_tokens):
    """Per-example (num_frames, num_tokens) with 1 <= num_tokens <= num_frames."""
    num_tokens = rng.integers(1, max_tokens + 1, batch)
    num_frames = np.array([rng.integers(t, max_frames + 1) for t in num_tokens])
    # One example always fills the padded shape, so padding is exercised both ways.
    num_frames[0], num_tokens[0] = max_frames, max_tokens
    return num_frames.astype(np.int32), num_tokens.astype(np.int32)


def reference_prior(frames, tokens, scaling=1.0):
    """[frames, tokens] log BetaBinomial(k; tokens - 1, scaling*i, scaling*(frames-i+1))."""
    n = tokens - 1
    prior = np.zeros([frames, tokens])
    for i in range(1, frames + 1):
        a, b = scaling * i, scaling * (frames - i + 1)
        for k in range(tokens):
            log_choose = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            log_beta_ratio = (
                math.lgamma(k + a)
                + math.lgamma(n - k + b)
                - math.lgamma(n + a + b)
                - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
            )
            prior[i - 1, k] = log_choose + log_beta_ratio
    return prior


def log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def reference_soft_alignment(scores, frames, tokens, log_prior=None):
    """[frames, tokens] log-softmax over tokens (+ prior, renormalized)."""
    out = log_softmax(scores[:frames, :tokens].astype(np.float64))
    if log_prior is not None:
        out = log_softmax(out + log_prior[:frames, :tokens])
    return out


def reference_ctc_nll(log_attention, frames, tokens, blank_logprob):
    """CTC -log p(labels 1..tokens) with a constant-logit blank, by the forward DP."""
    logits = np.concatenate(
        [np.full([frames, 1], blank_logprob), log_attention[:frames, :tokens]], axis=1
    ).astype(np.float64)
    log_probs = log_softmax(logits)
    extended = [0]
    for label in range(1, tokens + 1):
        extended += [label, 0]
    alpha = np.full([frames, len(extended)], -np.inf)
    alpha[0, 0] = log_probs[0, 0]
    alpha[0, 1] = log_probs[0, 1]
    for t in range(1, frames):
        for s, label in enumerate(extended):
            incoming = [alpha[t - 1, s]]
            if s >= 1:
                incoming.append(alpha[t - 1, s - 1])
            if label != 0 and s >= 2:  # labels are distinct: a blank may be skipped
                incoming.append(alpha[t - 1, s - 2])
            alpha[t, s] = np.logaddexp.reduce(incoming) + log_probs[t, label]
    return -np.logaddexp(alpha[-1, -1], alpha[-1, -2])


def reference_forward_sum_loss(log_attention, num_frames, num_tokens, blank_logprob):
    losses = [
        reference_ctc_nll(log_attention[b], f, t, blank_logprob) / t
        for b, (f, t) in enumerate(zip(num_frames, num_tokens, strict=True))
    ]
    return float(np.mean(losses))


def reference_mas(values, frames, tokens):
    """Glow-TTS MAS on one [frames, tokens] example: best path as a 0/1 matrix."""
    best = np.full([frames, tokens], -np.inf)
    for i in range(frames):
        # Token k is reachable at frame i if k <= i and the remaining frames
        # can still cover the remaining tokens.
        for k in range(max(0, tokens - frames + i), min(tokens, i + 1)):
            if i == 0:
                previous = 0.0
            else:
                stay = best[i - 1, k] if k < i else -np.inf
                advance = best[i - 1, k - 1] if k > 0 else -np.inf
                previous = max(stay, advance)
            best[i, k] = values[i, k] + previous
    path = np.zeros([frames, tokens], dtype=np.float32)
    k = tokens - 1
    for i in range(frames - 1, -1, -1):
        path[i, k] = 1
        # Ties stay on the current token, as in Glow-TTS's maximum_path.
        if k > 0 and (k == i or best[i - 1, k] < best[i - 1, k - 1]):
            k -= 1
    return path


def all_monotonic_paths(frames, tokens):
    """Every alignment of `frames` frames to `tokens` tokens, each token >= 1 frame."""
    for cuts in itertools.combinations(range(1, frames), tokens - 1):
        bounds = (0, *cuts, frames)
        path = np.zeros([frames, tokens])
        for k in range(tokens):
            path[bounds[k] : bounds[k + 1], k] = 1
        yield path


def padded(arrays, shape, fill=0.0):
    out = np.full(shape, fill, dtype=np.float32)
    for b, array in enumerate(arrays):
        out[b, : array.shape[0], : array.shape[1]] = array
    return out


def random_log_attention(rng, num_frames, num_tokens, max_frames, max_tokens, scale=2.0):
    scores = rng.normal(scale=scale, size=[len(num_frames), max_frames, max_tokens])
    return alignment.soft_alignment(scores.astype(np.float32), num_frames, num_tokens)


# ---------------------------------------------------------------------------
# beta_binomial_prior
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("scaling", [1.0, 0.05])
def test_beta_binomial_prior_matches_numpy(scaling):
    rng = np.random.default_rng(0)
    num_frames, num_tokens = random_lengths(rng, 5, 40, 12)
    num_frames[1], num_tokens[1] = 7, 1  # a single token: probability 1 everywhere
    prior = alignment.beta_binomial_prior(num_frames, num_tokens, 40, 12, scaling).numpy()
    assert prior.shape == (5, 40, 12) and prior.dtype == np.float32
    for b, (frames, tokens) in enumerate(zip(num_frames, num_tokens, strict=True)):
        expected = reference_prior(frames, tokens, scaling)
        # 8.9e-7 measured; atol as for the long utterance below.
        np.testing.assert_allclose(prior[b, :frames, :tokens], expected, atol=1e-4, rtol=1e-5)
        # 1.2e-7 measured: float32 sums of up to 12 probabilities.
        np.testing.assert_allclose(np.exp(prior[b, :frames, :tokens]).sum(-1), 1.0, atol=1e-5)
        assert np.all(prior[b, frames:] == alignment.LOG_ZERO)
        assert np.all(prior[b, :, tokens:] == alignment.LOG_ZERO)


def test_beta_binomial_prior_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    frames, tokens = 50, 9
    prior = alignment.beta_binomial_prior([frames], [tokens], frames, tokens).numpy()[0]
    for i in range(1, frames + 1):
        expected = stats.betabinom(tokens - 1, i, frames - i + 1).logpmf(np.arange(tokens))
        np.testing.assert_allclose(prior[i - 1], expected, atol=1e-4)  # 7.9e-7 measured


def test_beta_binomial_prior_long_utterance_is_accurate():
    # lgamma terms of order F log F cancel to O(1): this is why it runs in float64.
    frames, tokens = 1500, 200
    prior = alignment.beta_binomial_prior([frames], [tokens], frames, tokens).numpy()[0]
    rows = [0, 700, frames - 1]
    expected = reference_prior(frames, tokens)[rows]
    # The largest error, 3.05e-5, is half a float32 ulp of a log-probability
    # of -557: rtol covers such values, atol those near zero.
    np.testing.assert_allclose(prior[rows], expected, atol=1e-4, rtol=1e-6)


def test_beta_binomial_prior_compiles_with_xla():
    num_frames, num_tokens = np.array([30, 11], np.int32), np.array([8, 5], np.int32)
    compiled = tf.function(
        lambda f, t: alignment.beta_binomial_prior(f, t, 30, 8), jit_compile=True
    )
    np.testing.assert_allclose(
        compiled(num_frames, num_tokens).numpy(),
        alignment.beta_binomial_prior(num_frames, num_tokens, 30, 8).numpy(),
        atol=1e-6,  # equal when measured; XLA may fuse the float64 lgamma sums differently
    )


# ---------------------------------------------------------------------------
# soft_alignment
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("with_prior", [False, True])
def test_soft_alignment_matches_numpy(with_prior):
    rng = np.random.default_rng(1)
    batch, max_frames, max_tokens = 4, 15, 6
    num_frames, num_tokens = random_lengths(rng, batch, max_frames, max_tokens)
    # Raw scores far below LOG_ZERO's neighbourhood must still mask correctly.
    scores = rng.normal(size=[batch, max_frames, max_tokens]).astype(np.float32)
    scores[1] -= 1e6
    prior = None
    if with_prior:
        prior = alignment.beta_binomial_prior(num_frames, num_tokens, max_frames, max_tokens)
    log_attention = alignment.soft_alignment(scores, num_frames, num_tokens, prior).numpy()
    for b, (frames, tokens) in enumerate(zip(num_frames, num_tokens, strict=True)):
        prior_b = None if prior is None else prior.numpy()[b].astype(np.float64)
        expected = reference_soft_alignment(scores[b], frames, tokens, prior_b)
        # 8.3e-7 measured.
        np.testing.assert_allclose(log_attention[b, :frames, :tokens], expected, atol=1e-4)
        assert np.all(log_attention[b, frames:] == alignment.LOG_ZERO)
        assert np.all(log_attention[b, :, tokens:] == alignment.LOG_ZERO)
    attention = np.exp(log_attention)
    frame_mask = np.arange(max_frames)[None, :] < num_frames[:, None]
    # 1.8e-7 measured: float32 sums of up to 6 probabilities.
    np.testing.assert_allclose(attention.sum(-1), frame_mask.astype(np.float32), atol=1e-5)


def test_soft_alignment_gradient_is_finite_and_zero_on_padding():
    rng = np.random.default_rng(2)
    num_frames, num_tokens = np.array([7, 4], np.int32), np.array([5, 2], np.int32)
    scores = tf.constant(rng.normal(size=[2, 7, 5]).astype(np.float32))
    prior = alignment.beta_binomial_prior(num_frames, num_tokens, 7, 5)
    weights = tf.constant(rng.normal(size=[2, 7, 5]).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(scores)
        log_attention = alignment.soft_alignment(scores, num_frames, num_tokens, prior)
        objective = tf.reduce_sum(tf.exp(log_attention) * weights)
    gradient = tape.gradient(objective, scores).numpy()
    assert np.all(np.isfinite(gradient))
    assert np.all(gradient[1, 4:] == 0) and np.all(gradient[1, :, 2:] == 0)


# ---------------------------------------------------------------------------
# forward_sum_loss
# ---------------------------------------------------------------------------

IMPLEMENTATIONS = ["ctc_loss", "banded"]


def test_reference_ctc_matches_brute_force_path_sum():
    # Checks the reference itself: sum over every CTC path that collapses to 1..T.
    rng = np.random.default_rng(3)
    frames, tokens, blank_logprob = 5, 2, -0.7
    log_attention = rng.normal(size=[frames, tokens])
    logits = np.concatenate([np.full([frames, 1], blank_logprob), log_attention], axis=1)
    log_probs = log_softmax(logits)
    total = -np.inf
    for path in itertools.product(range(tokens + 1), repeat=frames):
        collapsed = [c for j, c in enumerate(path) if c != 0 and (j == 0 or path[j - 1] != c)]
        if collapsed == list(range(1, tokens + 1)):
            total = np.logaddexp(total, sum(log_probs[t, c] for t, c in enumerate(path)))
    # Both sides in float64 (4e-16 measured).
    assert reference_ctc_nll(log_attention, frames, tokens, blank_logprob) == pytest.approx(
        -total, rel=1e-12
    )


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("blank_logprob", [-1.0, 0.5])
def test_forward_sum_loss_matches_numpy_ctc(implementation, blank_logprob):
    rng = np.random.default_rng(4)
    batch, max_frames, max_tokens = 6, 20, 7
    num_frames, num_tokens = random_lengths(rng, batch, max_frames, max_tokens)
    num_frames[1], num_tokens[1] = 3, 3  # exactly one frame per token
    num_frames[2], num_tokens[2] = 9, 1
    log_attention = random_log_attention(rng, num_frames, num_tokens, max_frames, max_tokens)
    loss = alignment.forward_sum_loss(
        log_attention, num_frames, num_tokens, blank_logprob, implementation
    )
    expected = reference_forward_sum_loss(
        log_attention.numpy(), num_frames, num_tokens, blank_logprob
    )
    assert loss.numpy() == pytest.approx(expected, rel=1e-5)  # 3.4e-8 measured


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_forward_sum_loss_gradient_matches_finite_differences(implementation):
    rng = np.random.default_rng(5)
    num_frames, num_tokens = np.array([5, 4], np.int32), np.array([3, 2], np.int32)
    blank_logprob = -1.0
    values = rng.normal(size=[2, 6, 3])
    values[0, 5] = values[1, 4:] = values[1, :, 2] = 0.0  # padding
    with tf.GradientTape() as tape:
        log_attention = tf.constant(values.astype(np.float32))
        tape.watch(log_attention)
        loss = alignment.forward_sum_loss(
            log_attention, num_frames, num_tokens, blank_logprob, implementation
        )
    gradient = tape.gradient(loss, log_attention).numpy()

    expected = np.zeros_like(values)
    step = 1e-5
    for index in zip(*np.nonzero(np.ones_like(values)), strict=True):
        b, i, k = index
        if i >= num_frames[b] or k >= num_tokens[b]:
            continue  # padded entries: expected gradient stays 0
        up, down = values.copy(), values.copy()
        up[index] += step
        down[index] -= step
        expected[index] = (
            reference_forward_sum_loss(up, num_frames, num_tokens, blank_logprob)
            - reference_forward_sum_loss(down, num_frames, num_tokens, blank_logprob)
        ) / (2 * step)
    # 2.4e-8 measured. The float64 central difference is exact to ~1e-10
    # (step 1e-5); the rest is the float32 gradient.
    np.testing.assert_allclose(gradient, expected, atol=2e-6, rtol=1e-4)


def test_forward_sum_loss_implementations_agree_on_a_long_batch():
    rng = np.random.default_rng(6)
    num_frames, num_tokens = random_lengths(rng, 3, 300, 60)
    log_attention = random_log_attention(rng, num_frames, num_tokens, 300, 60)
    results = []
    for implementation in IMPLEMENTATIONS:
        with tf.GradientTape() as tape:
            tape.watch(log_attention)
            loss = alignment.forward_sum_loss(
                log_attention, num_frames, num_tokens, implementation=implementation
            )
        results.append((loss.numpy(), tape.gradient(loss, log_attention).numpy()))
    expected = reference_forward_sum_loss(log_attention.numpy(), num_frames, num_tokens, -1.0)
    for loss, _ in results:
        assert loss == pytest.approx(expected, rel=1e-5)  # 2.4e-7 measured (300 frames)
    (_, ctc_gradient), (_, banded_gradient) = results
    scale = np.abs(ctc_gradient).max()
    # 6.1e-6 of the largest gradient measured: two float32 recursions that add
    # up 300 frames in different orders.
    np.testing.assert_allclose(banded_gradient, ctc_gradient, atol=1e-3 * scale)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_forward_sum_loss_compiles_with_xla(implementation):
    rng = np.random.default_rng(7)
    num_frames, num_tokens = random_lengths(rng, 3, 16, 5)
    log_attention = random_log_attention(rng, num_frames, num_tokens, 16, 5)

    def value_and_gradient(log_attention):
        with tf.GradientTape() as tape:
            tape.watch(log_attention)
            loss = alignment.forward_sum_loss(
                log_attention, num_frames, num_tokens, implementation=implementation
            )
        return loss, tape.gradient(loss, log_attention)

    eager = value_and_gradient(log_attention)
    compiled = tf.function(value_and_gradient, jit_compile=True)(log_attention)
    # Equal and 1.7e-8 measured; XLA fuses and reorders float32 sums.
    assert compiled[0].numpy() == pytest.approx(eager[0].numpy(), rel=1e-5)
    np.testing.assert_allclose(compiled[1].numpy(), eager[1].numpy(), atol=1e-6)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_forward_sum_loss_skips_examples_with_too_few_frames(implementation):
    rng = np.random.default_rng(8)
    num_frames, num_tokens = np.array([8, 2], np.int32), np.array([4, 3], np.int32)
    log_attention = random_log_attention(rng, num_frames, num_tokens, 8, 4)
    with tf.GradientTape() as tape:
        tape.watch(log_attention)
        loss = alignment.forward_sum_loss(
            log_attention, num_frames, num_tokens, implementation=implementation
        )
    gradient = tape.gradient(loss, log_attention).numpy()
    expected = reference_ctc_nll(log_attention.numpy()[0], 8, 4, -1.0) / 4 / 2
    assert loss.numpy() == pytest.approx(expected, rel=1e-5)  # 1.3e-9 measured
    assert np.all(np.isfinite(gradient)) and np.all(gradient[1] == 0)


def test_forward_sum_loss_rejects_unknown_implementation():
    with pytest.raises(ValueError, match="implementation"):
        alignment.forward_sum_loss(tf.zeros([1, 2, 2]), [2], [2], implementation="cudnn")


# ---------------------------------------------------------------------------
# monotonic_alignment_search
# ---------------------------------------------------------------------------


def test_reference_mas_is_the_best_path():
    # Checks the reference itself by enumerating every monotonic alignment.
    rng = np.random.default_rng(9)
    for frames, tokens in [(1, 1), (4, 1), (4, 4), (6, 3), (7, 4)]:
        values = rng.normal(size=[frames, tokens])
        best = max((path * values).sum() for path in all_monotonic_paths(frames, tokens))
        path = reference_mas(values, frames, tokens)
        assert (path * values).sum() == pytest.approx(best)


def check_hard_alignment(hard, num_frames, num_tokens):
    """Asserts the structural properties of a hard monotonic alignment."""
    max_frames, max_tokens = hard.shape[1:]
    assert set(np.unique(hard)) <= {0.0, 1.0}
    for b, (frames, tokens) in enumerate(zip(num_frames, num_tokens, strict=True)):
        assert np.all(hard[b, frames:] == 0) and np.all(hard[b, :, tokens:] == 0)
        real = hard[b, :frames, :tokens]
        np.testing.assert_array_equal(real.sum(1), 1)  # one token per real frame
        token = real.argmax(1)
        assert token[0] == 0 and token[-1] == tokens - 1
        assert np.all(np.diff(token) >= 0) and np.all(np.diff(token) <= 1)  # monotonic
        assert np.all(real.sum(0) >= 1)  # every real token gets a frame


def compiled_mas(jit_compile):
    return tf.function(alignment.monotonic_alignment_search, jit_compile=jit_compile)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_mas_matches_numpy_reference(jit_compile):
    rng = np.random.default_rng(10)
    mas = compiled_mas(jit_compile)
    for max_frames, max_tokens in [(12, 5), (30, 9)]:
        for _ in range(8):
            batch = 4
            num_frames, num_tokens = random_lengths(rng, batch, max_frames, max_tokens)
            log_attention = random_log_attention(
                rng, num_frames, num_tokens, max_frames, max_tokens
            )
            hard = mas(log_attention, num_frames, num_tokens).numpy()
            expected = padded(
                [
                    reference_mas(log_attention.numpy()[b], f, t)
                    for b, (f, t) in enumerate(zip(num_frames, num_tokens, strict=True))
                ],
                hard.shape,
            )
            np.testing.assert_array_equal(hard, expected)
            check_hard_alignment(hard, num_frames, num_tokens)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_mas_breaks_ties_like_glow_tts(jit_compile):
    # Integer scores make many equal-scoring paths; the pick must match the reference.
    rng = np.random.default_rng(11)
    num_frames, num_tokens = random_lengths(rng, 8, 14, 6)
    values = rng.integers(-2, 1, size=[8, 14, 6]).astype(np.float32)
    values[0] = 0.0
    hard = compiled_mas(jit_compile)(values, num_frames, num_tokens).numpy()
    expected = padded(
        [
            reference_mas(values[b].astype(np.float64), f, t)
            for b, (f, t) in enumerate(zip(num_frames, num_tokens, strict=True))
        ],
        hard.shape,
    )
    np.testing.assert_array_equal(hard, expected)


def test_mas_edge_lengths():
    # One frame per token (the diagonal), a single token, a single frame.
    num_frames, num_tokens = np.array([5, 5, 1], np.int32), np.array([5, 1, 1], np.int32)
    log_attention = random_log_attention(np.random.default_rng(12), num_frames, num_tokens, 5, 5)
    for jit_compile in [False, True]:
        hard = compiled_mas(jit_compile)(log_attention, num_frames, num_tokens).numpy()
        np.testing.assert_array_equal(hard[0], np.eye(5))
        np.testing.assert_array_equal(hard[1, :, 0], 1)
        assert hard[2, 0, 0] == 1 and hard[2].sum() == 1
        check_hard_alignment(hard, num_frames, num_tokens)


def test_mas_has_no_gradient():
    log_attention = tf.random.normal([1, 4, 2])
    with tf.GradientTape() as tape:
        tape.watch(log_attention)
        hard = alignment.monotonic_alignment_search(log_attention, [4], [2])
        objective = tf.reduce_sum(hard * log_attention)
    # Only the explicit product contributes: d/dx sum(hard * x) = hard.
    np.testing.assert_array_equal(tape.gradient(objective, log_attention).numpy(), hard.numpy())


# ---------------------------------------------------------------------------
# durations_from_alignment, binarization_loss
# ---------------------------------------------------------------------------


def test_durations_from_alignment():
    rng = np.random.default_rng(13)
    num_frames, num_tokens = random_lengths(rng, 6, 25, 8)
    log_attention = random_log_attention(rng, num_frames, num_tokens, 25, 8)
    hard = alignment.monotonic_alignment_search(log_attention, num_frames, num_tokens)
    durations = alignment.durations_from_alignment(hard, num_tokens).numpy()
    assert durations.dtype == np.int32 and durations.shape == (6, 8)
    np.testing.assert_array_equal(durations, hard.numpy().sum(1).astype(np.int32))
    np.testing.assert_array_equal(durations.sum(1), num_frames)
    for b, tokens in enumerate(num_tokens):
        assert np.all(durations[b, :tokens] >= 1) and np.all(durations[b, tokens:] == 0)


def test_binarization_loss_matches_numpy():
    rng = np.random.default_rng(14)
    num_frames, num_tokens = random_lengths(rng, 5, 18, 6)
    log_attention = random_log_attention(rng, num_frames, num_tokens, 18, 6)
    hard = alignment.monotonic_alignment_search(log_attention, num_frames, num_tokens)
    loss = alignment.binarization_loss(hard, log_attention, num_frames).numpy()
    values, path = log_attention.numpy(), hard.numpy()
    expected = np.mean(
        [-(path[b, :f] * values[b, :f]).sum() / path[b, :f].sum() for b, f in enumerate(num_frames)]
    )
    assert loss == pytest.approx(expected, rel=1e-6)  # 9e-8 measured


def test_binarization_loss_ignores_padding_and_gradient_hits_the_path_only():
    num_frames = np.array([3, 2], np.int32)
    hard = np.zeros([2, 4, 2], np.float32)
    hard[0, [0, 1, 2], [0, 1, 1]] = 1
    hard[1, [0, 1], [0, 1]] = 1
    hard[1, 3, 0] = 1  # stray entry on a padded frame: ignored
    log_attention = tf.constant(np.log(np.full([2, 4, 2], 0.5, np.float32)))
    with tf.GradientTape() as tape:
        tape.watch(log_attention)
        loss = alignment.binarization_loss(hard, log_attention, num_frames)
    assert loss.numpy() == pytest.approx(np.log(2.0))
    gradient = tape.gradient(loss, log_attention).numpy()
    expected = -hard / np.array([3.0, 2.0])[:, None, None] / 2
    expected[1, 3, 0] = 0
    np.testing.assert_allclose(gradient, expected, rtol=1e-6)  # 3e-8 measured


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_empty_example_in_batch_is_inert(implementation):
    # A batch padded with an empty example (no frames, no tokens) must keep
    # every output and gradient finite and contribute zeros.
    rng = np.random.default_rng(15)
    num_frames, num_tokens = np.array([9, 0], np.int32), np.array([4, 0], np.int32)
    scores = tf.constant(rng.normal(size=[2, 9, 4]).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(scores)
        prior = alignment.beta_binomial_prior(num_frames, num_tokens, 9, 4)
        log_attention = alignment.soft_alignment(scores, num_frames, num_tokens, prior)
        hard = alignment.monotonic_alignment_search(log_attention, num_frames, num_tokens)
        loss = alignment.forward_sum_loss(
            log_attention, num_frames, num_tokens, implementation=implementation
        ) + alignment.binarization_loss(hard, log_attention, num_frames)
    gradient = tape.gradient(loss, scores).numpy()
    assert np.isfinite(loss.numpy())
    assert np.all(np.isfinite(gradient)) and np.all(gradient[1] == 0)
    assert np.all(prior.numpy()[1] == alignment.LOG_ZERO)
    assert np.all(log_attention.numpy()[1] == alignment.LOG_ZERO)
    assert np.all(hard.numpy()[1] == 0)
    durations = alignment.durations_from_alignment(hard, num_tokens).numpy()
    np.testing.assert_array_equal(durations.sum(1), num_frames)
    check_hard_alignment(hard.numpy()[:1], num_frames[:1], num_tokens[:1])
