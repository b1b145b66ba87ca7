"""Export a trained run: a SavedModel that reads text and speaks, and a TFLite acoustic model.

    summary = export_saved_model("runs/sample", "exported/sample")
    speech = tf.saved_model.load("exported/sample")          # no mmae needed
    out = speech.signatures["serving_default"](text=tf.constant(["Hello world.", ""]))
    out["audio"]    # float32 [2, samples], zero-padded
    out["lengths"]  # int32 [2]: samples of each text (0 for the empty one)

    tflite = export_tflite("runs/sample", "exported/acoustic.tflite")  # {"bytes", "ops", ...}

The SavedModel holds the whole synthesizer in TensorFlow ops: the in-graph
text frontend (`mmae.text.graph_frontend`: normalization, tokenization and,
for phoneme runs, the bundled pronunciation lexicon and G2P model), the acoustic model's
`synthesize_mel` with as many frames as the predicted durations need, and
the vocoder (the bundled neural one by default, `vocoder=` chooses) with
per-item lengths. It follows `Synthesizer`: a
text is split into sentences at ". ! ? ;" followed by whitespace and at blank
lines, all sentences of the request run as one padded batch, a text's
sentences are joined with 0.25 s of silence and its audio is scaled down to
`audio.output_peak_level` (0.95) if louder. A text or sentence with nothing to say (empty,
punctuation only, only characters the symbol set lacks such as emoji) gives
no audio: length 0, never an error for the rest of the batch. Unlike
`Synthesizer`, a sentence longer than 300 characters is not split further.

Signatures (input `text`: `tf.string [batch]`, except `acoustic`):

- `serving_default`: `audio` float32 `[batch, samples]` (padded with zeros)
  and `lengths` int32 `[batch]`, at `sample_rate` (see export.json).
- `mel`: `mel` float32 `[batch, frames, num_mels]` (log-mels, padded with
  zeros; a text's sentences back to back without pauses, as
  `Synthesizer.synthesize_mel`) and `num_frames` int32 `[batch]`.
- `tokenize`: the text frontend alone, `tokens` int32 `[batch, T]` (padded
  with 0, ending in EOS) and `num_tokens` int32 `[batch]` (0: nothing to
  say); each text is tokenized whole, without sentence splitting. Its ids
  feed the TFLite acoustic model.
- `acoustic` (inputs `tokens` int32 `[batch, T]`, `num_tokens` int32
  `[batch]`, each at least 1, as `tokenize` gives them): the acoustic model
  alone, `mel` and `num_frames` as `mel` returns them, for one sentence per
  row. For clients that tokenize themselves, and to time the model apart
  from the text frontend.

Next to `saved_model.pb` and `variables/`, the export directory has the run's
`config.yaml` and `export.json`: the config, sample rate, sizes, export time,
what the in-graph normalizer covers and, for phoneme runs, the lexicon's
size.

TensorFlow Serving
------------------

The export directory is a servable: TensorFlow Serving wants it under a
numbered version directory, e.g. `models/mmae/1/`:

    export_saved_model("runs/sample", "models/mmae/1")

    docker run --rm -p 8501:8501 \\
        -v "$PWD/models/mmae:/models/mmae" -e MODEL_NAME=mmae tensorflow/serving

    # Row format: one prediction object per text.
    curl -s -X POST http://localhost:8501/v1/models/mmae:predict \\
        -d '{"instances": ["Hello world.", "How are you?"]}'
    # -> {"predictions": [{"audio": [...], "lengths": 19200}, {...}]}

    # Columnar format, and the mel signature:
    curl -s -X POST http://localhost:8501/v1/models/mmae:predict \\
        -d '{"signature_name": "mel", "inputs": {"text": ["Hello world."]}}'
    # -> {"outputs": {"mel": [[[...]]], "num_frames": [75]}}

Each item's audio is padded to the longest in the request: keep
`audio[:lengths]` (float32 samples in [-1, 1] at the sample rate of
export.json). gRPC clients call `Predict` with the same signature names and
a `tf.string` tensor named `text`. `saved_model_cli show --dir models/mmae/1
--all` lists the signatures.

TFLite
------

`export_tflite` converts the acoustic model alone (token ids to mel; the
text frontend's string ops and the vocoder stay in the SavedModel; the
SavedModel's `tokenize` signature gives the ids). Its signature
`serving_default` takes `tokens` int32 `[1, T]` (any T) and `num_tokens`
int32 `[1]`, and returns `output_0`, the log-mel float32
`[1, frames, num_mels]`, and `output_1`, `num_frames` int32 `[1]`:

    runner = tf.lite.Interpreter(model_path="acoustic.tflite").get_signature_runner()
    out = runner(tokens=ids[None], num_tokens=np.array([len(ids)], np.int32))

It uses TFLite builtin ops only when the converter manages (it does for the
CrossModalAutoencoder: 0.27 MB for the tiny test model), and otherwise falls
back to `SELECT_TF_OPS` (TensorFlow ops in the interpreter, which needs the
Flex delegate); the returned summary says which.
"""

import json
import os
import time
import warnings

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from mmae.config import frontend_mismatch
from mmae.synthesis import NON_FINAL_PERIOD

__all__ = ["SpeechSynthesisModule", "export_saved_model", "export_tflite"]

PAUSE_SECONDS = 0.25  # as Synthesizer
_SENTENCE_MARK = "\x01"
_KEPT_PERIOD = "\x02"
_TEXT = tf.TensorSpec([None], tf.string, name="text")
_TOKENS = tf.TensorSpec([None, None], tf.int32, name="tokens")
_NUM_TOKENS = tf.TensorSpec([None], tf.int32, name="num_tokens")


class SpeechSynthesisModule(tf.Module):
    """Text to speech in TensorFlow ops: the module a SavedModel export holds.

    `synthesize`, `mel` and `tokenize` run eagerly here; `signatures()`
    traces them for `tf.saved_model.save`.

    Args:
        model: a built `CrossModalAutoencoder` (anything with `synthesize_mel`).
        frontend: a `mmae.text.graph_frontend.GraphFrontend` for the run's text config.
        vocoder: a `mmae.vocoders.Vocoder` for the run's audio features.
        sample_rate: of the vocoder's waveforms.
        pause_seconds: silence between the sentences of a text.
        peak: a text's audio louder than this is scaled down to it
            (`audio.output_peak_level`).
    """

    def __init__(self, model, frontend, vocoder, sample_rate, peak, pause_seconds=PAUSE_SECONDS):
        super().__init__(name="speech_synthesis")
        self.model = model
        self.frontend = frontend
        self.vocoder = vocoder
        self.sample_rate = sample_rate
        self.pause_samples = int(round(pause_seconds * sample_rate))
        self.peak = peak
        self.num_mels = model.num_mels

    def synthesize(self, text):
        """Texts [B] -> {"audio": float32 [B, samples] padded, "lengths": int32 [B]}."""
        return self._audio(*self._sentence_mels(text, self.frontend.tokenize))

    def mel(self, text):
        """Texts [B] -> {"mel": float32 [B, frames, num_mels] padded, "num_frames": int32 [B]}."""
        return self._joined_mel(*self._sentence_mels(text, self.frontend.tokenize))

    def tokenize(self, text):
        """Texts [B] -> {"tokens": int32 [B, T] padded, "num_tokens": int32 [B]} (no splitting)."""
        tokens, num_tokens = self.frontend.tokenize(text)
        return {"tokens": tokens, "num_tokens": num_tokens}

    def acoustic(self, tokens, num_tokens):
        """The acoustic model alone: ids [B, T] (each row >= 1 token) -> {"mel", "num_frames"}.

        The ids are what `tokenize` gives; for clients that tokenize
        themselves, and to time the model without the text frontend.
        """
        speakers = tf.zeros_like(num_tokens)
        mel, num_frames = self.model.synthesize_mel(tokens, num_tokens, speakers, 1.0)
        return {"mel": tf.cast(mel, tf.float32), "num_frames": tf.cast(num_frames, tf.int32)}

    def signatures(self):
        """The concrete functions of the export's signatures.

        The frontend and the acoustic model, the bulk of the graph, are
        traced once and called from every signature. They are not attributes
        of the module, which would make saving trace them again.
        """
        tokenize = tf.function(self.frontend.tokenize, input_signature=[_TEXT], autograph=False)
        sentence_mels = tf.function(
            lambda text: self._sentence_mels(text, tokenize),
            input_signature=[_TEXT],
            autograph=False,
        )

        def tokens(text):
            ids, num_tokens = tokenize(text)
            return {"tokens": ids, "num_tokens": num_tokens}

        functions = {
            "serving_default": lambda text: self._audio(*sentence_mels(text)),
            "mel": lambda text: self._joined_mel(*sentence_mels(text)),
            "tokenize": tokens,
        }
        concrete = {
            name: tf.function(
                function, input_signature=[_TEXT], autograph=False
            ).get_concrete_function()
            for name, function in functions.items()
        }
        concrete["acoustic"] = tf.function(
            self.acoustic, input_signature=[_TOKENS, _NUM_TOKENS], autograph=False
        ).get_concrete_function()
        return concrete

    def _audio(self, rows, num_texts, mel, num_frames, spoken):
        waveforms = self.vocoder(mel, num_frames)
        lengths = self.vocoder.samples_for_frames(num_frames)
        audio, total = _join(waveforms, lengths, spoken, rows, num_texts, self.pause_samples)
        loudest = tf.reduce_max(tf.abs(audio), axis=1, keepdims=True)
        audio *= tf.where(loudest > self.peak, self.peak / tf.maximum(loudest, 1e-12), 1.0)
        return {"audio": audio, "lengths": total}

    def _joined_mel(self, rows, num_texts, mel, num_frames, spoken):
        mel, total = _join(mel, num_frames, spoken, rows, num_texts, 0)
        return {"mel": mel, "num_frames": total}

    def _sentence_mels(self, text, tokenize):
        """Mels of every sentence of every text, as one batch, with the text of each."""
        sentences = _split_sentences(text)
        tokens, num_tokens = tokenize(sentences.flat_values)
        spoken = num_tokens > 0
        # EOS in place of every sentence with nothing to say, and one row of
        # just EOS when there is no sentence at all: the model never sees an
        # empty batch or row, and those rows are dropped below. (No extra
        # row otherwise: it would double the work of a one-sentence call.)
        count = tf.shape(tokens)[0]
        extra = tf.maximum(1 - count, 0)
        width = tf.maximum(tf.shape(tokens)[1], 1)
        eos = tf.cast(tf.range(width) == 0, tf.int32) * self.frontend.eos_id
        tokens = tf.pad(tokens, [[0, extra], [0, width - tf.shape(tokens)[1]]])
        keep = tf.concat([spoken, tf.zeros([extra], tf.bool)], axis=0)
        tokens = tf.where(keep[:, None], tokens, eos[None, :])
        num_tokens = tf.where(keep, tf.pad(num_tokens, [[0, extra]]), 1)
        speakers = tf.zeros_like(num_tokens)
        mel, num_frames = self.model.synthesize_mel(tokens, num_tokens, speakers, 1.0)
        num_frames = tf.where(keep, tf.cast(num_frames, tf.int32), 0)[:count]
        mel = tf.cast(mel, tf.float32)[:count]
        rows = tf.cast(sentences.value_rowids(), tf.int32)
        return rows, tf.shape(text)[0], mel, num_frames, spoken


def _split_sentences(text):
    """`split_sentences` of mmae.synthesis without its length limit: ragged [B, (S)]."""
    text = tf.strings.strip(text)
    text = tf.strings.regex_replace(text, "(?i)" + NON_FINAL_PERIOD, "\\1" + _KEPT_PERIOD + "\\2")
    text = tf.strings.regex_replace(text, r"([.!?;])\s+", "\\1" + _SENTENCE_MARK)
    text = tf.strings.regex_replace(text, r"\n\s*\n", _SENTENCE_MARK)
    text = tf.strings.regex_replace(text, _KEPT_PERIOD, ".")
    sentences = tf.strings.strip(tf.strings.split(text, sep=_SENTENCE_MARK))
    return tf.ragged.boolean_mask(sentences, tf.strings.length(sentences) > 0)


def _join(values, lengths, spoken, rows, num_rows, gap):
    """Concatenates each row's spoken items, `gap` zeros apart.

    Args:
        values: [N, L, ...] padded items.
        lengths: [N] valid length of each item.
        spoken: [N] which items count (the others add neither values nor gap).
        rows: [N] the output row of each item, in order.
        num_rows: B.
        gap: zeros between two consecutive spoken items of a row.

    Returns:
        ([B, longest, ...] zero-padded, [B] int32 lengths).
    """
    lengths = tf.where(spoken, lengths, 0)
    extent = tf.where(spoken, lengths + gap, 0)
    before = tf.cumsum(extent, exclusive=True)
    first = tf.math.unsorted_segment_min(tf.range(tf.size(rows)), rows, num_rows)
    offsets = before - tf.gather(before, tf.gather(first, rows))
    count = tf.math.unsorted_segment_sum(tf.cast(spoken, tf.int32), rows, num_rows)
    totals = tf.math.unsorted_segment_sum(extent, rows, num_rows) - gap * tf.minimum(count, 1)
    longest = tf.reduce_max(tf.concat([totals, [0]], axis=0))
    positions = tf.where(tf.sequence_mask(lengths, tf.shape(values)[1]))
    items = tf.cast(positions[:, 0], tf.int32)
    steps = tf.cast(positions[:, 1], tf.int32)
    targets = tf.stack([tf.gather(rows, items), tf.gather(offsets, items) + steps], axis=1)
    shape = tf.concat([[num_rows, longest], tf.shape(values)[2:]], axis=0)
    joined = tf.scatter_nd(targets, tf.gather_nd(values, positions), shape)
    return joined, totals


def _load_model(run_dir, checkpoint):
    """(config, model) of a training run, or of a pretrained model's directory."""
    from mmae import runs

    config, model = runs.load(run_dir, checkpoint)
    _check_model(model, run_dir)
    return config, model


def _check_model(model, run_dir):
    if not hasattr(model, "synthesize_mel"):
        raise ValueError(
            f"{run_dir} holds a {type(model).__name__}, which cannot synthesize from text."
        )


def _transcripts(data_dir):
    """The transcripts of a prepared directory (its plan.json), to check the frontend on."""
    path = os.path.join(data_dir, "plan.json")
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{data_dir} is not a prepared dataset (no plan.json).")
    with tf.io.gfile.GFile(path) as f:
        plan = json.load(f)
    return [clip[2] for shard in plan["shards"] for clip in shard["clips"]]


def _directory_size(path):
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )


def export_saved_model(
    run_dir,
    out_dir,
    checkpoint=None,
    data_dir=None,
    texts=(),
    overwrite=False,
    lexicon=None,
    vocoder="auto",
):
    """Writes a SavedModel of `run_dir` that maps text to audio (see the module docstring).

    Args:
        run_dir: a training run (`mmae train --run-dir`), or the directory of a
            pretrained model (`mmae.pretrained.path_of()`, the bundled one).
        out_dir: the export directory (for TensorFlow Serving, a numbered
            version directory such as `models/mmae/1`).
        checkpoint: a checkpoint prefix instead of the run's latest.
        data_dir: the run's prepared data: up to 200 of its transcripts
            check that the SavedModel's ids equal the Python tokenizer's
            (the same frontend, so all of them unless `lexicon` replaces
            the bundled pack).
        texts: more texts for the same purpose.
        overwrite: replace an export already in `out_dir`.
        lexicon: a `PhonemeLexicon` instead of the bundled frontend's (words
            it lacks are spelled).
        vocoder: "auto" (the bundled neural vocoder if it matches the run's
            features, else Griffin-Lim with a warning), "griffin_lim", the
            path of a vocoder run or pack, or a `Vocoder`.

    Returns:
        The export summary, also written to `out_dir/export.json`.

    Raises:
        FileExistsError: `out_dir` holds an export and `overwrite` is False.
        ValueError: the run's model cannot synthesize from text.
    """
    from mmae.text import tokenizer_from_config
    from mmae.text.graph_frontend import GraphFrontend, agreement
    from mmae.vocoders import resolve_vocoder

    start = time.perf_counter()
    if tf.io.gfile.exists(os.path.join(out_dir, "saved_model.pb")) and not overwrite:
        raise FileExistsError(
            f"{out_dir} already holds a SavedModel (overwrite=True, or --overwrite, replaces it)."
        )
    config, model = _load_model(run_dir, checkpoint)
    mismatch = frontend_mismatch(config.text)
    if mismatch:
        warnings.warn(mismatch, stacklevel=2)
    texts = list(texts) + (_transcripts(data_dir) if data_dir else [])
    frontend = GraphFrontend.from_config(config.text, lexicon=lexicon)
    vocoder = resolve_vocoder(vocoder, config.audio)
    module = SpeechSynthesisModule(
        model, frontend, vocoder, config.audio.sample_rate, config.audio.output_peak_level
    )
    signatures = module.signatures()
    tf.io.gfile.makedirs(out_dir)
    tf.saved_model.save(module, out_dir, signatures=signatures)
    config.save(os.path.join(out_dir, "config.yaml"))
    summary = {
        "run_dir": os.path.abspath(run_dir),
        "signatures": {
            "serving_default": {
                "inputs": {"text": "string [batch]"},
                "outputs": {
                    "audio": "float32 [batch, samples], zero-padded",
                    "lengths": "int32 [batch]",
                },
            },
            "mel": {
                "inputs": {"text": "string [batch]"},
                "outputs": {
                    "mel": f"float32 [batch, frames, {config.audio.num_mels}], zero-padded",
                    "num_frames": "int32 [batch]",
                },
            },
            "tokenize": {
                "inputs": {"text": "string [batch]"},
                "outputs": {
                    "tokens": "int32 [batch, tokens], zero-padded, ending in EOS (1)",
                    "num_tokens": "int32 [batch], 0 for a text with nothing to say",
                },
            },
            "acoustic": {
                "inputs": {
                    "tokens": "int32 [batch, tokens], zero-padded (as tokenize gives)",
                    "num_tokens": "int32 [batch], each at least 1",
                },
                "outputs": {
                    "mel": f"float32 [batch, frames, {config.audio.num_mels}], zero-padded",
                    "num_frames": "int32 [batch]",
                },
            },
        },
        "sample_rate": config.audio.sample_rate,
        "num_mels": config.audio.num_mels,
        "vocoder": vocoder.get_config(),
        "tokenizer": config.text.tokenizer,
        "symbol_set": config.text.symbol_set,
        "pause_seconds": PAUSE_SECONDS,
        "peak": config.audio.output_peak_level,
        "normalizer": _normalizer_summary(),
        "config": config.to_dict(),
    }
    if frontend.tokenizer == "phonemes":
        summary["lexicon_entries"] = frontend.lexicon_size
        summary["g2p"] = frontend.g2p is not None
    if texts:
        traced = signatures["tokenize"]

        def tokenize(text):
            out = traced(text=text)
            return out["tokens"], out["num_tokens"]

        rate, mismatches = agreement(tokenize, tokenizer_from_config(config.text), texts[:200])
        summary["frontend_agreement"] = {
            "texts": min(len(texts), 200),
            "equal_ids": round(rate, 4),
            "examples": [list(m) for m in mismatches[:5]],
        }
    summary["saved_model_bytes"] = _directory_size(out_dir)
    summary["seconds"] = round(time.perf_counter() - start, 1)
    with tf.io.gfile.GFile(os.path.join(out_dir, "export.json"), "w") as f:
        f.write(json.dumps(summary, indent=1, ensure_ascii=False))
    return summary


def _normalizer_summary():
    from mmae.text import graph_frontend

    doc = graph_frontend.__doc__
    covers = doc[doc.index("What it covers") : doc.index("Phonemes:")].strip()
    return " ".join(covers.split())


def export_tflite(run_dir, out_path, checkpoint=None, select_tf_ops=None):
    """Converts the run's acoustic model (token ids -> mel) to TFLite.

    Args:
        run_dir: a training run, or a pretrained model's directory.
        out_path: the .tflite file to write.
        checkpoint: a checkpoint prefix instead of the run's latest.
        select_tf_ops: None tries builtin ops first and falls back to
            `SELECT_TF_OPS`; True or False forces one.

    Returns:
        {"path", "bytes", "ops": "builtin" or "builtin+select_tf_ops", "error"
        (why builtin ops alone failed, if they did)}.
    """
    _, model = _load_model(run_dir, checkpoint)

    @tf.function(
        input_signature=[
            tf.TensorSpec([1, None], tf.int32, name="tokens"),
            tf.TensorSpec([1], tf.int32, name="num_tokens"),
        ],
        autograph=False,
    )
    def acoustic(tokens, num_tokens):
        mel, num_frames = model.synthesize_mel(tokens, num_tokens, tf.zeros([1], tf.int32), 1.0)
        return {"mel": tf.cast(mel, tf.float32), "num_frames": tf.cast(num_frames, tf.int32)}

    return _write_tflite(acoustic.get_concrete_function(), out_path, select_tf_ops)


def export_tflite_vocoder(vocoder, out_path, audio_config, select_tf_ops=None):
    """Converts a vocoder (log-mel `[1, frames, num_mels]` -> audio `[1, samples]`) to TFLite.

    Args:
        vocoder: anything `mmae.vocoders.resolve_vocoder` takes ("auto",
            "griffin_lim", a vocoder's path, a `Vocoder`).
        out_path: the .tflite file to write.
        audio_config: the features the vocoder inverts.
        select_tf_ops: as for `export_tflite`.

    Returns:
        As `export_tflite`, with the vocoder's class name under "vocoder".
    """
    from mmae.vocoders import resolve_vocoder

    vocoder = resolve_vocoder(vocoder, audio_config)

    @tf.function(
        input_signature=[
            tf.TensorSpec([1, None, audio_config.num_mels], tf.float32, name="log_mel")
        ],
        autograph=False,
    )
    def vocode(log_mel):
        return {"audio": vocoder(log_mel)}

    summary = _write_tflite(vocode.get_concrete_function(), out_path, select_tf_ops)
    return {**summary, "vocoder": type(vocoder).__name__}


def _write_tflite(concrete_function, out_path, select_tf_ops):
    # The variables become constants first: converted from a concrete
    # function of a Keras 3 model as they are, they stay resource variables
    # that the interpreter never initializes (its mel came out as NaN).
    frozen = convert_variables_to_constants_v2(concrete_function)
    attempts = [False, True] if select_tf_ops is None else [bool(select_tf_ops)]
    error = None
    for use_select in attempts:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], tf.Module())
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if use_select:
            converter.target_spec.supported_ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
        try:
            flatbuffer = converter.convert()
        except Exception as failure:  # the converter raises ConverterError and others
            error = _conversion_error(failure)
            if use_select or select_tf_ops is not None:
                raise
            continue
        directory = os.path.dirname(os.path.abspath(out_path))
        tf.io.gfile.makedirs(directory)
        with tf.io.gfile.GFile(out_path, "wb") as f:
            f.write(flatbuffer)
        return {
            "path": out_path,
            "bytes": len(flatbuffer),
            "ops": "builtin+select_tf_ops" if use_select else "builtin",
            "error": error,
        }
    raise RuntimeError(f"TFLite conversion failed: {error}")


def _conversion_error(failure):
    """One line on why a conversion failed: the ops TFLite lacks, when the converter names them."""
    lines = [line.strip() for line in str(failure).strip().splitlines()]
    # The first line is usually an op's source location, hundreds of characters long.
    named = [line for line in lines if line.startswith("TF Select ops:")]
    gist = named[0] if named else (lines[0] if lines else "")
    return f"{type(failure).__name__}: {gist[:500]}"
