"""Learned text-to-mel alignment maths as pure TensorFlow functions.

The unsupervised aligner of "One TTS Alignment To Rule Them All" (Badlani et
al. 2021, used by RAD-TTS and FastPitch) scores every (mel frame, token) pair,
turns the scores into a soft alignment (`soft_alignment`, optionally shaped by
the static `beta_binomial_prior`), trains it with the CTC-based
`forward_sum_loss`, extracts a hard alignment with Glow-TTS's monotonic
alignment search (`monotonic_alignment_search`), and pulls the soft alignment
towards the hard one with `binarization_loss`. `durations_from_alignment`
turns the hard alignment into frames per token for the duration predictor.

Shape conventions, shared by every function here:

* Batches are padded to static shapes `[B, F, T]`: `F` mel frames (the query
  axis), `T` tokens (the key axis). Real lengths are `num_frames` `[B]` and
  `num_tokens` `[B]` (int32); frame `i` of example `b` is real when
  `i < num_frames[b]`, token `k` when `k < num_tokens[b]`.
* A log-alignment (`log_attention`, the log-prior) holds, on every real frame,
  a log-distribution over the real tokens; every padded entry (padded frame or
  padded token) holds `LOG_ZERO`. So `exp(log_attention)` is the soft
  alignment with rows summing to 1 on real frames and zeros elsewhere.
* A hard alignment is a float32 0/1 tensor `[B, F, T]`: one 1 per real frame,
  zeros on padded frames and tokens.

Everything runs eagerly, inside `tf.function` and under XLA
(`tf.function(jit_compile=True)`) on CPU, `forward_sum_loss` included (both
its `tf.nn.ctc_loss` and its faster `"banded"` implementation).

Example:

>>> import tensorflow as tf
>>> from mmae import alignment
>>> num_frames, num_tokens = tf.constant([6, 4]), tf.constant([3, 2])
>>> scores = tf.random.normal([2, 6, 3])
>>> prior = alignment.beta_binomial_prior(num_frames, num_tokens, 6, 3)
>>> log_attention = alignment.soft_alignment(scores, num_frames, num_tokens, prior)
>>> loss = alignment.forward_sum_loss(log_attention, num_frames, num_tokens)
>>> hard = alignment.monotonic_alignment_search(log_attention, num_frames, num_tokens)
>>> alignment.durations_from_alignment(hard, num_tokens).numpy().sum(axis=1).tolist()
[6, 4]
"""

import tensorflow as tf

# Log-probability of padded entries. Finite rather than -inf so that sums,
# products with 0 and the CTC recursion never produce NaN, yet far enough below
# any real log-probability (or raw score) that exp() of it is exactly 0.
LOG_ZERO = -1e9


def _masks(num_frames, num_tokens, max_frames, max_tokens):
    """Boolean `[B, F, 1]` real-frame and `[B, 1, T]` real-token masks."""
    frame_mask = tf.sequence_mask(num_frames, max_frames)[:, :, None]
    token_mask = tf.sequence_mask(num_tokens, max_tokens)[:, None, :]
    return frame_mask, token_mask


def beta_binomial_prior(num_frames, num_tokens, max_frames, max_tokens, scaling=1.0):
    """Static beta-binomial alignment prior, in log space.

    For real frame `i` (1-based) of `F = num_frames[b]` and real token `k`
    (0-based) of `T = num_tokens[b]` the prior is the pmf

        BetaBinomial(k; n=T-1, a=scaling*i, b=scaling*(F-i+1)),

    a bump that slides from the first token to the last as `i` goes from the
    first frame to the last; smaller `scaling` widens it. Each real row is a
    normalized distribution over the real tokens. (NeMo/FastPitch use n=T and
    drop the mass at k=T; `soft_alignment` renormalizes over tokens, so that
    only nudges the shape slightly.)

    Computed with `tf.math.lgamma` in float64, because the log-gamma terms are
    of order F*log(F) and cancel to O(1): in float32 the result is off by up
    to ~3e-3 at 1500 frames (float64: ~3e-5, the float32 output rounding).
    It depends on lengths only, so it can be computed in the input pipeline or
    outside the compiled step: a 16 x 600 x 120 batch takes ~20 ms in graph
    mode and ~45 ms under XLA on a 2-core CPU.

    Args:
        num_frames: int `[B]`, real mel frames per example.
        num_tokens: int `[B]`, real tokens per example (>= 1 for real rows).
        max_frames: Python int, the padded frame axis `F` (static under XLA).
        max_tokens: Python int, the padded token axis `T`.
        scaling: positive float, the prior's concentration scale.

    Returns:
        float32 `[B, max_frames, max_tokens]` log-prior, `LOG_ZERO` on padded
        frames and padded tokens (the same convention as `soft_alignment`'s
        output, so `exp()` of it is the prior matrix with zeros on padding).
    """
    frames = tf.cast(num_frames, tf.float64)[:, None, None]
    tokens = tf.cast(num_tokens, tf.float64)[:, None, None]
    frame = tf.range(1, max_frames + 1, dtype=tf.float64)[None, :, None]
    token = tf.range(max_tokens, dtype=tf.float64)[None, None, :]
    frame_mask, token_mask = _masks(num_frames, num_tokens, max_frames, max_tokens)
    # Padded positions are clamped into the valid range so lgamma stays finite
    # in the branch tf.where discards.
    frames = tf.maximum(frames, 1.0)
    tokens = tf.maximum(tokens, 1.0)
    frame = tf.minimum(frame, frames)
    token = tf.minimum(token, tokens - 1.0)
    n = tokens - 1.0
    alpha = scaling * frame
    beta = scaling * (frames - frame + 1.0)
    log_choose = (
        tf.math.lgamma(n + 1.0) - tf.math.lgamma(token + 1.0) - tf.math.lgamma(n - token + 1.0)
    )
    # log B(k + a, n - k + b) - log B(a, b), grouped so that only two lgammas
    # are evaluated on the full [B, F, T] grid: the rest depend on frames or
    # tokens alone (alpha + beta = scaling * (F + 1) for every frame).
    log_beta_ratio = (
        tf.math.lgamma(token + alpha)
        + tf.math.lgamma(n - token + beta)
        - tf.math.lgamma(n + scaling * (frames + 1.0))
        - tf.math.lgamma(alpha)
        - tf.math.lgamma(beta)
        + tf.math.lgamma(scaling * (frames + 1.0))
    )
    log_pmf = log_choose + log_beta_ratio
    return tf.where(frame_mask & token_mask, tf.cast(log_pmf, tf.float32), LOG_ZERO)


def soft_alignment(scores, num_frames, num_tokens, log_prior=None):
    """Soft text-to-mel alignment: log-softmax of the scores over real tokens.

    RAD-TTS's aligner: `log_softmax(scores)` over the token axis, plus the
    log-prior, re-normalized with a second log-softmax, so every real frame
    holds a log-distribution over the real tokens.

    Args:
        scores: float `[B, F, T]` alignment scores, e.g. `-temperature *` the
            squared L2 distance between the aligner's mel and text embeddings.
        num_frames: int `[B]`, real mel frames per example.
        num_tokens: int `[B]`, real tokens per example (>= 1).
        log_prior: optional float `[B, F, T]` log-prior (e.g.
            `beta_binomial_prior`); its padded entries are ignored.

    Returns:
        float32 `log_attention` `[B, F, T]`: on real frames the log-softmax over
        real tokens; `LOG_ZERO` on padded frames and padded tokens.
    """
    scores = tf.convert_to_tensor(scores, tf.float32)
    max_frames, max_tokens = tf.shape(scores)[1], tf.shape(scores)[2]
    frame_mask, token_mask = _masks(num_frames, num_tokens, max_frames, max_tokens)
    # -inf keeps padded tokens out of the normalizer whatever the scale of the
    # real scores. Padded frames, and examples without tokens, are masked only
    # at the end: an all -inf row would make the log-softmax NaN, which would
    # not reach the gradient but would surface in any intermediate inspected.
    empty = (tf.cast(num_tokens, tf.int32) <= 0)[:, None, None]
    keep = token_mask | empty
    log_attention = tf.nn.log_softmax(tf.where(keep, scores, -float("inf")), axis=-1)
    if log_prior is not None:
        log_prior = tf.where(keep, tf.convert_to_tensor(log_prior, tf.float32), 0.0)
        log_attention = tf.nn.log_softmax(log_attention + log_prior, axis=-1)
    return tf.where(frame_mask & token_mask, log_attention, LOG_ZERO)


def forward_sum_loss(
    log_attention, num_frames, num_tokens, blank_logprob=-1.0, implementation="banded"
):
    """Forward-sum alignment loss (RAD-TTS): CTC with the tokens as labels.

    The tokens are the CTC labels `1..num_tokens[b]` (each once, in order), the
    frames the time axis, and class 0 a blank with constant logit
    `blank_logprob`. The logits `[blank, log_attention]` are log-softmaxed over
    classes (as `tf.nn.ctc_loss` does, and NeMo before its CTC call), so each
    frame's distribution is over the blank and the real tokens; padded token
    columns are forced to `LOG_ZERO` and take no mass. The loss is minus the
    log of the summed probability of all CTC paths that visit every token in
    order.

    Normalization: each example's CTC negative log-likelihood is divided by its
    `num_tokens`, then averaged over the batch (RAD-TTS/NeMo: mean of
    ctc / key_len). Examples with fewer frames than tokens cannot be aligned;
    they contribute 0 (like PyTorch's `zero_infinity=True`) and no gradient.

    Both implementations compute the same value and gradient (tests check both
    against a float64 NumPy CTC), and both compile under
    `tf.function(jit_compile=True)` on CPU, value and gradient:

    * `"ctc_loss"`: `tf.nn.ctc_loss` with dense labels, a pure-TF scan with a
      custom gradient. Its recursion multiplies by a dense state-transition
      matrix, O(F * T^2) per example: ~0.9 s (XLA) / ~2.5 s (graph) for value
      and gradient of a 16 x 600 x 120 batch on a 2-core CPU.
    * `"banded"`: the same CTC recursion over the 2T+1 extended states using
      only its three-diagonal band, O(F * T), with a forward-backward custom
      gradient: ~45 ms (XLA) / ~90 ms (graph) on that batch.

    `"banded"` is the default: with `"ctc_loss"` this one loss would cost more
    than the rest of a training step. `tf.nn.ctc_loss` stays the reference
    that the tests hold `"banded"` to.

    Args:
        log_attention: float `[B, F, T]` from `soft_alignment` (any scores
            work: they are log-softmaxed together with the blank).
        num_frames: int `[B]`, real mel frames (the CTC logit lengths).
        num_tokens: int `[B]`, real tokens (the CTC label lengths).
        blank_logprob: float, the blank's logit on every frame.
        implementation: `"ctc_loss"` or `"banded"`, see above.

    Returns:
        float32 scalar loss, differentiable with respect to `log_attention`.
    """
    log_attention = tf.convert_to_tensor(log_attention, tf.float32)
    num_frames = tf.cast(num_frames, tf.int32)
    num_tokens = tf.cast(num_tokens, tf.int32)
    batch, max_frames, max_tokens = (tf.shape(log_attention)[i] for i in range(3))
    _, token_mask = _masks(num_frames, num_tokens, max_frames, max_tokens)
    logits = tf.where(token_mask, log_attention, LOG_ZERO)
    blank = tf.fill([batch, max_frames, 1], tf.cast(blank_logprob, tf.float32))
    logits = tf.concat([blank, logits], axis=-1)  # [B, F, 1 + T], class 0 = blank
    if implementation == "ctc_loss":
        labels = tf.tile(tf.range(1, max_tokens + 1)[None, :], [batch, 1])
        ctc = tf.nn.ctc_loss(
            labels=labels,
            logits=logits,
            label_length=num_tokens,
            logit_length=num_frames,
            logits_time_major=False,
            blank_index=0,
        )
    elif implementation == "banded":
        ctc = _banded_ctc_loss(tf.nn.log_softmax(logits, axis=-1), num_frames, num_tokens)
    else:
        raise ValueError(f"implementation must be 'ctc_loss' or 'banded', got {implementation!r}")
    # Labels are all distinct, so no blank is needed between them and the
    # alignment is feasible whenever there are at least as many frames.
    feasible = (num_tokens >= 1) & (num_frames >= num_tokens)
    per_example = ctc / tf.cast(tf.maximum(num_tokens, 1), tf.float32)
    return tf.reduce_mean(tf.where(feasible, per_example, 0.0))


# Log of an unreachable CTC state. Finite so the banded recursion never
# computes inf - inf; far below any reachable path's log-probability.
_CTC_LOG_ZERO = -1e30


def _scaled_ctc_forward(emissions, num_states):
    """Scaled CTC forward variables over the extended label sequence.

    The extended sequence is blank, label 1, blank, ..., label T_b, blank: even
    states are blanks, odd states labels. A state is entered from itself, the
    state before, or (label states only: the labels are all distinct) the label
    two before. Each frame is shifted so its best real state is 0, keeping the
    values O(1) for float32 precision; the shifts are accumulated.

    Args:
        emissions: float32 `[F, B, S]`, time-major log-probabilities of each
            extended state's class.
        num_states: int32 `[B]`, real extended states, `2 * num_tokens + 1`.

    Returns:
        `(alpha, log_scale)`: `[F, B, S]` shifted log forward variables (the
        emission of the frame included) and `[F, B]` cumulative shifts, so the
        true value is `alpha + log_scale[..., None]`.
    """
    state = tf.range(tf.shape(emissions)[2])
    can_skip = ((state % 2 == 1) & (state >= 2))[None, :]
    real_state = tf.sequence_mask(num_states, tf.shape(emissions)[2])

    def shift(alpha, log_scale):
        top = tf.reduce_max(tf.where(real_state, alpha, _CTC_LOG_ZERO), axis=1)
        return alpha - top[:, None], log_scale + top

    def step(carry, emission):
        alpha, log_scale = carry
        stay = alpha
        advance = tf.pad(alpha[:, :-1], [[0, 0], [1, 0]], constant_values=_CTC_LOG_ZERO)
        skip = tf.pad(alpha[:, :-2], [[0, 0], [2, 0]], constant_values=_CTC_LOG_ZERO)
        skip = tf.where(can_skip, skip, _CTC_LOG_ZERO)
        top = tf.maximum(tf.maximum(stay, advance), skip)
        summed = tf.exp(stay - top) + tf.exp(advance - top) + tf.exp(skip - top)
        return shift(top + tf.math.log(summed) + emission, log_scale)

    # A path starts on the leading blank or on the first label.
    first = tf.where(state[None, :] < 2, emissions[0], _CTC_LOG_ZERO)
    first = shift(first, tf.zeros_like(first[:, 0]))
    alpha, log_scale = tf.scan(step, emissions[1:], initializer=first)
    return (
        tf.concat([first[0][None], alpha], axis=0),
        tf.concat([first[1][None], log_scale], axis=0),
    )


def _banded_ctc_loss(log_probs, num_frames, num_tokens):
    """CTC negative log-likelihood of labels 1..num_tokens, blank 0, per example.

    Args:
        log_probs: float32 `[B, F, 1 + T]`, log-softmaxed over classes.
        num_frames: int32 `[B]`.
        num_tokens: int32 `[B]`.

    Returns:
        float32 `[B]`; huge (not inf) where `num_frames < num_tokens`.
    """
    max_frames = tf.shape(log_probs)[1]
    max_states = 2 * (tf.shape(log_probs)[2] - 1) + 1
    state = tf.range(max_states)
    state_class = tf.where(state % 2 == 0, 0, (state + 1) // 2)
    num_states = 2 * num_tokens + 1
    real = (
        tf.sequence_mask(num_frames, max_frames)[:, :, None]
        & tf.sequence_mask(num_states, max_states)[:, None, :]
    )

    def reverse(x):
        # Reversing time (real frames) and states (real states) turns the
        # backward recursion into the forward one: the reversed extended
        # sequence has the same blank/label pattern.
        x = tf.reverse_sequence(x, num_frames, seq_axis=1, batch_axis=0)
        return tf.reverse_sequence(x, num_states, seq_axis=2, batch_axis=0)

    @tf.custom_gradient
    def nll(emissions):  # [B, F, S]
        alpha, log_scale = _scaled_ctc_forward(tf.transpose(emissions, [1, 0, 2]), num_states)
        last_frame = tf.maximum(num_frames - 1, 0)
        last_alpha = tf.gather(tf.transpose(alpha, [1, 0, 2]), last_frame, batch_dims=1)
        # A path ends on the last label or the trailing blank.
        ends = tf.stack([num_states - 1, tf.maximum(num_states - 2, 0)], axis=1)
        end_alpha = tf.gather(last_alpha, ends, batch_dims=1)
        total_scale = tf.gather(tf.transpose(log_scale), last_frame, batch_dims=1)
        value = -(total_scale + tf.reduce_logsumexp(end_alpha, axis=1))

        def grad(upstream):
            beta, _ = _scaled_ctc_forward(tf.transpose(reverse(emissions), [1, 0, 2]), num_states)
            beta = reverse(tf.transpose(beta, [1, 0, 2]))
            # Paths through (frame, state), up to a per-frame constant (both
            # passes count the frame's emission once, hence the subtraction);
            # normalizing over states gives the posterior, whose negative is
            # d(-log likelihood) / d(emission).
            through = tf.transpose(alpha, [1, 0, 2]) + beta - emissions
            posterior = tf.nn.softmax(tf.where(real, through, _CTC_LOG_ZERO), axis=2)
            return -upstream[:, None, None] * tf.where(real, posterior, 0.0)

        return value, grad

    return nll(tf.gather(log_probs, state_class, axis=2))


def monotonic_alignment_search(log_attention, num_frames, num_tokens):
    """Glow-TTS monotonic alignment search: the best hard monotonic alignment.

    Finds, per example, the path that starts at (frame 0, token 0), ends at
    (last real frame, last real token), and from each frame to the next stays
    on the same token or moves to the next one, maximizing the sum of
    `log_attention` over its cells. So every real token gets >= 1 frame and
    every real frame exactly one token. Ties go to staying on the current token
    when backtracking (as in Glow-TTS's reference implementation).

    The DP runs over frames with all tokens and examples vectorized:
    `best[i, k] = log_attention[i, k] + max(best[i-1, k], best[i-1, k-1])`,
    recording whether the max came from the previous token; a second loop
    backtracks from the end. No gradient flows through the result.

    Args:
        log_attention: float `[B, F, T]`. Entries on padded frames/tokens are
            never visited, so they can hold anything finite.
        num_frames: int `[B]`, real mel frames; must be >= `num_tokens` (else the
            result is not a valid alignment).
        num_tokens: int `[B]`, real tokens.

    Returns:
        float32 `[B, F, T]` hard alignment: one-hot rows on real frames, zeros
        on padded frames and tokens.
    """
    log_attention = tf.stop_gradient(tf.convert_to_tensor(log_attention, tf.float32))
    num_frames = tf.cast(num_frames, tf.int32)
    num_tokens = tf.cast(num_tokens, tf.int32)
    max_tokens = tf.shape(log_attention)[2]
    frame_major = tf.transpose(log_attention, [1, 0, 2])  # [F, B, T]
    neg_inf = tf.constant(-float("inf"), tf.float32)
    token_index = tf.range(max_tokens)[None, :]

    def forward(carry, values):
        best, _ = carry
        from_previous_token = tf.pad(best[:, :-1], [[0, 0], [1, 0]], constant_values=neg_inf)
        # Strict: on a tie the path stays on the current token.
        advance = from_previous_token > best
        return values + tf.maximum(best, from_previous_token), advance

    # Only token 0 is reachable on frame 0; -inf elsewhere keeps the path from
    # ever skipping ahead (k <= i), so no explicit band is needed.
    first = tf.where(token_index == 0, frame_major[0], neg_inf)
    no_advance = tf.zeros_like(first, tf.bool)
    _, advances = tf.scan(forward, frame_major[1:], initializer=(first, no_advance))
    # advances[i] says whether frame i's best came from token k-1 at frame i-1.
    advances = tf.concat([no_advance[None], advances], axis=0)

    def backward(token, inputs):
        frame, advance = inputs
        active = frame < num_frames
        emitted = tf.where(active, token, -1)  # one_hot(-1) is an all-zero row
        came_from_previous = tf.gather(advance, tf.maximum(token, 0), batch_dims=1)
        # token == frame forces a move: token k needs k earlier frames.
        move = active & (token > 0) & ((token == frame) | came_from_previous)
        return token - tf.cast(move, tf.int32), emitted

    frames = tf.range(tf.shape(frame_major)[0])
    _, tokens = tf.scan(
        lambda carry, inputs: backward(carry[0], inputs),
        (frames, advances),
        initializer=(num_tokens - 1, tf.zeros_like(num_tokens)),
        reverse=True,
    )
    hard = tf.one_hot(tf.transpose(tokens), max_tokens, dtype=tf.float32)  # [B, F, T]
    return tf.stop_gradient(hard)


def durations_from_alignment(hard_alignment, num_tokens):
    """Frames per token of a hard alignment.

    Args:
        hard_alignment: float `[B, F, T]` 0/1 alignment (zeros on padded frames).
        num_tokens: int `[B]`, real tokens.

    Returns:
        int32 `[B, T]` durations, zero on padded tokens; for a
        `monotonic_alignment_search` result each row sums to `num_frames` and
        every real token gets >= 1.
    """
    hard_alignment = tf.convert_to_tensor(hard_alignment)
    max_tokens = tf.shape(hard_alignment)[2]
    durations = tf.cast(tf.round(tf.reduce_sum(hard_alignment, axis=1)), tf.int32)
    return tf.where(tf.sequence_mask(num_tokens, max_tokens), durations, 0)


def binarization_loss(hard_alignment, log_attention, num_frames):
    """Binarization loss (RAD-TTS): mean -log soft attention on the hard path.

    Per example `-sum(hard * log_attention) / sum(hard)` over real frames, then
    the mean over the batch, where an example without real frames counts as 0
    (RAD-TTS pools the sums over the whole batch, weighting long utterances
    more; per-example normalization matches `forward_sum_loss`). Gradients flow
    to `log_attention` only.

    Args:
        hard_alignment: float `[B, F, T]` 0/1 alignment (no gradient).
        log_attention: float `[B, F, T]` from `soft_alignment`.
        num_frames: int `[B]`, real mel frames.

    Returns:
        float32 scalar loss.
    """
    hard_alignment = tf.stop_gradient(tf.convert_to_tensor(hard_alignment, tf.float32))
    log_attention = tf.convert_to_tensor(log_attention, tf.float32)
    frame_mask = tf.sequence_mask(num_frames, tf.shape(log_attention)[1])[:, :, None]
    selected = frame_mask & (hard_alignment > 0)
    # tf.where, not a product: 0 * LOG_ZERO is fine but 0 * -inf is NaN.
    weighted = tf.where(selected, hard_alignment * log_attention, 0.0)
    weight = tf.reduce_sum(tf.where(selected, hard_alignment, 0.0), axis=[1, 2])
    per_example = -tf.reduce_sum(weighted, axis=[1, 2]) / tf.maximum(weight, 1.0)
    return tf.reduce_mean(per_example)
