"""The `mmae` command line. It only parses arguments and calls library functions.

mmae prepare SOURCE OUT [--config PRESET_OR_FILE] [--set key=value ...]
mmae train --data PREPARED --run-dir RUN [--config PRESET_OR_FILE] [--set key=value ...]
mmae synthesize [--run RUN] "TEXT" -o OUT.wav | --text-file FILE --out-dir DIR
mmae config [--config PRESET_OR_FILE] [--set key=value ...]
mmae export --run RUN --out DIR [--data PREPARED] [--tflite PATH] [--overwrite]
mmae evaluate --run RUN --data PREPARED [--limit N] [--no-dnsmos]
"""

import argparse
import contextlib
import json
import logging
import os
import subprocess
import sys


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    # TensorFlow's C++ INFO and WARNING lines bury the progress bar; errors still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _without_tensorflow_noise():
        try:
            return args.run(args) or 0
        except KeyboardInterrupt:
            print(
                f"\nmmae {args.command}: interrupted. {_RESUME_HINTS.get(args.command, '')}",
                file=sys.stderr,
            )
            return 130
        except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as error:
            # Expected failures (bad input, bad config) get a message, not a traceback.
            print(f"mmae {args.command}: error: {error}", file=sys.stderr)
            return 2


_RESUME_HINTS = {
    "prepare": "Finished shards are kept; run the same command again to resume.",
    "train": "Checkpoints are kept; run the same command again to resume from the last one.",
    "train-g2p": "Checkpoints are kept; run the same command again to resume.",
    "train-vocoder": "Checkpoints are kept; run the same command again to resume.",
}

# Lines TensorFlow's C++ code prints on every run that read as failures but are
# not: absl's notice and oneDNN's, written while the libraries load, before
# TF_CPP_MIN_LOG_LEVEL applies; and oneDNN's fallback for int32 ops, logged as
# an error although the results are the same.
_ABSL_NOTICE = (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
)
_TENSORFLOW_NOISE = (
    r"oneDNN custom operations are on\.",
    r"oneDNN supports DT_INT32 only on platforms with AVX-512\.",
)
# Where there is no NVIDIA driver, the CUDA build of TensorFlow says so twice,
# the second time as an error. Where there is one, the same lines tell why the
# GPU is not used, so they stay.
_NO_GPU_NOISE = (
    r"Could not find cuda drivers on your machine, GPU will not be used\.",
    r"failed call to cuInit: ",
)
# The C++ log prefix: severity, date, time, thread, file:line.
_LOG_PREFIX = r"[IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\] "

# The filter between file descriptor 2 and the real stderr, run as a child
# process (see _without_tensorflow_noise).
_FILTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stderr_filter.py")


def _noise_pattern(has_nvidia_driver):
    """A regex for whole stderr lines that `mmae` drops (see _TENSORFLOW_NOISE)."""
    messages = _TENSORFLOW_NOISE + (() if has_nvidia_driver else _NO_GPU_NOISE)
    return rf"(?:{_ABSL_NOTICE}|{_LOG_PREFIX}(?:{'|'.join(messages)}).*)\n"


def _has_nvidia_driver():
    # The driver's /proc entry and control device (containers get them too),
    # or WSL's GPU device.
    return any(
        os.path.exists(path) for path in ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/dxg")
    )


@contextlib.contextmanager
def _without_tensorflow_noise():
    """Runs the body with TensorFlow's harmless C++ start-up lines dropped from stderr.

    TensorFlow writes them to file descriptor 2 itself, some before any
    setting applies, so the filter sits there: a child process that passes
    every other line on. A process and not a thread, so that what a crashing
    command wrote last (a failed C++ check aborts) still reaches the user.
    Python's own stderr (progress bars, warnings, errors) bypasses it, to stay
    in order with stdout. The library, imported by a user, is left alone.
    """
    try:
        real_stderr = os.dup(2)
    except OSError:  # no stderr to filter
        yield
        return
    try:
        pump = subprocess.Popen(
            [sys.executable, "-I", "-S", _FILTER, _noise_pattern(_has_nvidia_driver())],
            stdin=subprocess.PIPE,
            stdout=real_stderr,
            start_new_session=True,  # Ctrl-C is for the command; the filter drains after it
        )
    except OSError:
        os.close(real_stderr)
        yield
        return
    python_stderr = sys.stderr
    python_stderr.flush()
    os.dup2(pump.stdin.fileno(), 2)
    if _file_descriptor(python_stderr) == 2:
        # Never closed: loggers made during the command (TensorFlow's) keep it
        # as their stream, and may still write when the process exits.
        sys.stderr = open(
            os.dup(real_stderr),
            "w",
            buffering=1,
            encoding=python_stderr.encoding,
            errors=python_stderr.errors,
        )
        _DIRECT_STDERR.append(sys.stderr)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr = python_stderr
        os.dup2(real_stderr, 2)
        os.close(real_stderr)
        pump.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            # A process the command started may still hold the pipe; it ends with it.
            pump.wait(timeout=5)


_DIRECT_STDERR = []


def _file_descriptor(stream):
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # pytest's capture, a StringIO
        return None


def build_parser():
    parser = argparse.ArgumentParser(
        prog="mmae", description="Multimodal (text + audio) autoencoder for speech synthesis."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    prepare = commands.add_parser(
        "prepare",
        help="turn a corpus into sharded TFRecords with features, statistics and a report",
        description="Prepare an LJSpeech-style directory or a path|text|speaker manifest.",
    )
    prepare.add_argument(
        "source", help="corpus directory (metadata.csv or manifest.csv) or manifest file"
    )
    prepare.add_argument("out", help="output directory (local or gs://)")
    _add_config_arguments(prepare)
    prepare.add_argument(
        "--jobs", type=int, default=None, help="worker threads (default: one per core)"
    )
    prepare.add_argument(
        "--strict", action="store_true", help="fail on any bad row instead of skipping it"
    )
    prepare.add_argument("--overwrite", action="store_true", help="discard an earlier run in OUT")
    prepare.add_argument("--quiet", action="store_true", help="no progress bar")
    prepare.set_defaults(run=_prepare)

    train = commands.add_parser(
        "train",
        help="train a model on prepared data, or resume the run in --run-dir",
        description="Train on a directory made by `mmae prepare`. Without --config the data's "
        "own config is used, so the features match. Rerunning on the same --run-dir resumes "
        "from its last checkpoint with the run's stored config.",
    )
    _add_run_arguments(train, data_help="a directory made by `mmae prepare`")
    _add_config_arguments(train)
    train.add_argument(
        "--init-from",
        default=None,
        metavar="MODEL",
        help="start from this acoustic run or pretrained model (e.g. flite_slt, the bundled "
        "one) instead of from nothing: fine-tuning on a new voice. It must have the run's "
        "model size, symbol set and features",
    )
    train.set_defaults(run=_train)

    train_vocoder = commands.add_parser(
        "train-vocoder",
        help="train a neural vocoder on prepared data (with audio), or resume --run-dir",
        description="Train a Vocos vocoder (log-mel to waveform) on a directory made by "
        "`mmae prepare --set data.store_audio=true`. The features are the data's; training "
        "settings come from a vocoder preset laid over them. Rerunning on the same --run-dir "
        "resumes from its last checkpoint.",
    )
    _add_run_arguments(
        train_vocoder, data_help="a directory made by `mmae prepare` with stored audio"
    )
    _add_config_arguments(
        train_vocoder,
        config_help="vocoder preset (vocoder, vocoder_gpu) or a YAML/JSON file of train: and "
        "vocoder: settings (default: vocoder; a resumed run keeps its own)",
        example="vocoder.adversarial_start=0",
    )
    train_vocoder.add_argument(
        "--init-from",
        default=None,
        metavar="VOCODER",
        help="start from this vocoder run or pack (fine-tuning, e.g. on `mmae predict-mels` "
        "output)",
    )
    train_vocoder.set_defaults(run=_train_vocoder)

    prepare_lexicon = commands.add_parser(
        "prepare-lexicon",
        help="phonemize a general English vocabulary with espeak-ng: the lexicon and G2P data",
        description="Build the pronunciation lexicon of the text frontend (WordNet's words, "
        "their inflections and context forms, and a spelling dictionary's words, read by "
        "espeak-ng) and split its words into train and held-out TSVs for `mmae train-g2p`. "
        "Needs espeak-ng, phonemizer, wordnet-base and wamerican-insane (scripts/setup.sh "
        "installs them).",
    )
    prepare_lexicon.add_argument("out", help="output directory")
    prepare_lexicon.add_argument(
        "--word-list",
        nargs="*",
        default=None,
        metavar="PATH",
        help="one-word-a-line lists whose words join the lexicon (default: "
        "/usr/share/dict/american-english-insane, from wamerican-insane; none when given "
        "without a path). The G2P trains on every word of the lexicon",
    )
    _add_config_arguments(
        prepare_lexicon,
        default="flite16k",
        config_help="preset or YAML/JSON file whose text: section names the phoneme symbol set "
        "and espeak-ng voice (default: flite16k, the bundled model's)",
        example="text.language=en-gb",
    )
    prepare_lexicon.set_defaults(run=_prepare_lexicon)

    train_g2p = commands.add_parser(
        "train-g2p",
        help="train the grapheme-to-phoneme model on a prepared lexicon, or resume --run-dir",
        description="Train the learned G2P (letters to phonemes, CTC) that reads words "
        "outside the lexicon, on a directory made by `mmae prepare-lexicon`. Validation logs "
        "its phoneme and word error rates on the held-out words. Rerunning on the same "
        "--run-dir resumes from its last checkpoint.",
    )
    _add_run_arguments(train_g2p, data_help="a directory made by `mmae prepare-lexicon`")
    _add_config_arguments(
        train_g2p,
        config_help="G2P preset or YAML/JSON file of train: and g2p: settings (default: g2p; "
        "a resumed run keeps its own)",
        example="train.steps=2000",
    )
    train_g2p.add_argument(
        "--init-from",
        default=None,
        metavar="G2P",
        help="start from this G2P run or text frontend pack (en-us: the bundled one) instead "
        "of from nothing, e.g. to fine-tune on a larger lexicon; it must have the run's "
        "symbol set and g2p sizes",
    )
    train_g2p.set_defaults(run=_train_g2p)

    predict_mels = commands.add_parser(
        "predict-mels",
        help="rewrite prepared data with an acoustic run's teacher-forced log-mels",
        description="Copy a prepared directory (with stored audio), replacing each clip's "
        "log-mel with the acoustic model's text-path prediction, spoken with the aligner's "
        "durations so it lines up with the recording: data to fine-tune a vocoder on the "
        "model's own output (`mmae train-vocoder --data OUT --init-from VOCODER`).",
    )
    predict_mels.add_argument("--run", dest="run_dir", required=True, help="an acoustic run")
    predict_mels.add_argument("--data", required=True, help="its prepared data, with audio")
    predict_mels.add_argument("--out", required=True, help="the new prepared directory")
    predict_mels.add_argument("--quiet", action="store_true", help="no progress bar")
    predict_mels.set_defaults(run=_predict_mels)

    synthesize = commands.add_parser(
        "synthesize",
        help="speak text with a trained run",
        description="Synthesize speech from text with a training run's latest checkpoint.",
    )
    synthesize.add_argument("text", nargs="?", help="the text to speak (or use --text-file)")
    synthesize.add_argument(
        "--run",
        dest="run_dir",
        default=None,
        help="a training run directory (default: the bundled pretrained model)",
    )
    synthesize.add_argument("-o", "--output", help="output WAV file for TEXT")
    synthesize.add_argument("--text-file", help="a UTF-8 file with one text per line")
    synthesize.add_argument("--out-dir", help="where --text-file's WAVs go (0001.wav, ...)")
    synthesize.add_argument(
        "--rate", type=float, default=1.0, help="speaking rate (> 1 faster, < 1 slower)"
    )
    synthesize.add_argument("--speaker", type=int, default=0, help="speaker id (multi-speaker)")
    synthesize.add_argument("--plot", action="store_true", help="also write each mel as a PNG")
    synthesize.add_argument("--batch-size", type=int, default=16, help="sentences per batch")
    synthesize.add_argument("--vocoder", default="auto", help=_VOCODER_HELP)
    synthesize.add_argument("--quiet", action="store_true", help="no progress bar")
    synthesize.set_defaults(run=_synthesize)

    serve = commands.add_parser(
        "serve",
        help="speak over HTTP: OpenAI's and Coqui's speech APIs, streamed, with a web page",
        description="Serve a run (default: the bundled pretrained model) over HTTP: POST "
        "/v1/audio/speech (OpenAI's speech API, streamed sentence by sentence), GET /api/tts "
        "(Coqui TTS's tts-server), /voices, /health, /metrics (Prometheus) and a page at /. "
        "Concurrent requests' sentences share model calls. Needs the serve extra "
        '(pip install "mmae[serve]").',
    )
    served = serve.add_mutually_exclusive_group()
    served.add_argument(
        "--run", dest="run_dir", default=None, help="a training run (default: the bundled model)"
    )
    served.add_argument(
        "--saved-model",
        default=None,
        help="a directory written by `mmae export` (speed 1 and its one voice only)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument("--vocoder", default="auto", help=_VOCODER_HELP)
    serve.add_argument(
        "--max-batch", type=int, default=8, help="most sentences in one model call (1: no batching)"
    )
    serve.add_argument(
        "--max-wait-ms", type=float, default=5.0, help="how long a batch waits for more sentences"
    )
    serve.add_argument(
        "--max-queue", type=int, default=256, help="most sentences queued; more get 503"
    )
    serve.add_argument(
        "--workers", type=int, default=2, help="model calls that may run at once (threads)"
    )
    serve.add_argument(
        "--max-characters", type=int, default=4096, help="longest text of one request; more get 413"
    )
    serve.set_defaults(run=_serve)

    export = commands.add_parser(
        "export",
        help="write a SavedModel (text in, audio out) and optionally a TFLite acoustic model",
        description="Export a training run as a SavedModel whose serving_default signature "
        "maps a batch of strings to audio and lengths (see mmae/export.py for TensorFlow "
        "Serving). With --tflite, also convert the acoustic model (token ids to mel).",
    )
    export.add_argument(
        "--run",
        dest="run_dir",
        default=None,
        help="a run directory made by `mmae train` (default: the bundled pretrained model)",
    )
    export.add_argument("--out", required=True, help="the SavedModel directory to write")
    export.add_argument(
        "--data",
        default=None,
        help="the run's prepared data: its transcripts check that the SavedModel tokenizes "
        "them as the Python side does",
    )
    export.add_argument("--checkpoint", default=None, help="a checkpoint instead of the latest")
    export.add_argument("--tflite", default=None, metavar="PATH", help="also write this .tflite")
    export.add_argument("--vocoder", default="auto", help=_VOCODER_HELP)
    export.add_argument(
        "--tflite-vocoder",
        default=None,
        metavar="PATH",
        help="also write the vocoder (log-mel to audio) as this .tflite",
    )
    export.add_argument("--overwrite", action="store_true", help="replace an export in --out")
    export.set_defaults(run=_export)

    evaluate = commands.add_parser(
        "evaluate",
        help="score a run's speech on held-out sentences (WER, MCD, F0, DNSMOS)",
        description="Synthesize the validation sentences of prepared data with a run and "
        "write report.json, report.md, report.png and the worst sentences' audio.",
    )
    evaluate.add_argument("--run", dest="run_dir", required=True, help="training run directory")
    evaluate.add_argument(
        "--data", required=True, help="prepared data directory (its validation split is used)"
    )
    evaluate.add_argument("--out", help="output directory (default: RUN/evaluation)")
    evaluate.add_argument("--limit", type=int, help="only the first N validation sentences")
    evaluate.add_argument("--checkpoint", help="a checkpoint prefix to use instead of the latest")
    evaluate.add_argument(
        "--model-only",
        action="store_true",
        help="score only the model's row, not the recordings and the vocoder ceiling",
    )
    evaluate.add_argument(
        "--no-dnsmos",
        action="store_true",
        help="no DNSMOS naturalness scores (they need speechmos and onnxruntime)",
    )
    evaluate.add_argument(
        "--corpus", help="read the recordings from here instead of dataset.json's source"
    )
    evaluate.add_argument(
        "--num-worst", type=int, default=10, help="worst sentences listed and written as audio"
    )
    audio = evaluate.add_mutually_exclusive_group()
    audio.add_argument("--all-audio", action="store_true", help="write every sentence's audio")
    audio.add_argument("--no-audio", action="store_true", help="write no audio")
    evaluate.add_argument("--vocoder", default="auto", help=_VOCODER_HELP)
    evaluate.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    evaluate.set_defaults(run=_evaluate)

    config = commands.add_parser("config", help="print the resolved configuration as YAML")
    _add_config_arguments(config)
    config.set_defaults(run=_show_config)
    return parser


_VOCODER_HELP = (
    "griffin_lim, or the path of a vocoder (a `mmae train-vocoder` run or a pack); "
    "default: the bundled neural vocoder when the features match, else Griffin-Lim"
)


def _add_run_arguments(parser, data_help):
    """The arguments every training command shares: data, run directory, device, budgets."""
    parser.add_argument("--data", required=True, help=data_help)
    parser.add_argument("--run-dir", required=True, help="where checkpoints and logs go")
    parser.add_argument(
        "--tpu",
        default=None,
        help='TPU name or address, "local" on a TPU VM (Colab), or "auto": find one, else '
        "train without",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="stop at this step (the schedule still spans train.steps; rerun to go on)",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="stop after this many minutes of training (summed over resumes), with a "
        "checkpoint; the learning-rate schedule still spans train.steps",
    )
    parser.add_argument(
        "--cpu-minutes",
        type=float,
        default=None,
        help="the same in CPU-minutes of the training steps (with N busy cores, N x wall "
        "minutes), so a run sharing the machine still gets its computation",
    )
    parser.add_argument(
        "--profile",
        default=None,
        metavar="FIRST:LAST",
        help="trace steps FIRST+1 to LAST (and what runs between them) with tf.profiler, to "
        "RUN/tensorboard/plugins/profile",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_options(args):
    """`train`'s keyword arguments from `_add_run_arguments`' options."""
    for flag, value in (("--minutes", args.minutes), ("--cpu-minutes", args.cpu_minutes)):
        if value is not None and not value > 0:
            raise ValueError(f"{flag} must be a positive number of minutes, got {value}.")
    profile_steps = None
    if args.profile is not None:
        first, _, last = args.profile.partition(":")
        try:
            profile_steps = (int(first), int(last))
        except ValueError:
            raise ValueError(
                f"--profile takes FIRST:LAST, two step numbers, got {args.profile!r}."
            ) from None
    return {
        "profile_steps": profile_steps,
        "tpu": args.tpu,
        "progress": not args.quiet,
        "max_steps": args.steps,
        "time_budget_s": None if args.minutes is None else 60 * args.minutes,
        "cpu_budget_s": None if args.cpu_minutes is None else 60 * args.cpu_minutes,
    }


def _finished(summary):
    """The exit status of a training command (the trainer logged how to resume a stop)."""
    if summary["stopped"] in ("SIGINT", "SIGTERM"):
        return 130 if summary["stopped"] == "SIGINT" else 143
    print(summary["message"])
    timing = summary.get("timing")
    if timing:
        shares = sorted(timing["phase_shares"].items(), key=lambda item: -item[1])
        print(
            f"Wall time {timing['wall_seconds']:.0f} s: "
            + ", ".join(f"{name} {share:.0%}" for name, share in shares if share >= 0.005)
            + ' (metrics.jsonl has the "timing" record).'
        )
    return 0


def _add_config_arguments(
    parser,
    default=None,
    config_help="preset name (ljspeech, flite16k, tiny) or a YAML/JSON file",
    example="audio.sample_rate=16000",
):
    """`--config` (a preset or file) and repeatable `--set KEY=VALUE` overrides."""
    parser.add_argument("--config", default=default, help=config_help)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override one setting, e.g. --set {example} (repeatable)",
    )


def _load_config(args):
    from mmae.config import Config

    return Config.load(args.config, overrides=args.overrides)


def _prepare(args):
    from mmae.datasets.prepare import prepare

    config = _load_config(args)
    summary = prepare(
        args.source,
        args.out,
        config,
        jobs=args.jobs,
        strict=args.strict,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    splits = summary["splits"]
    print(
        f"Prepared {args.out}: {splits['train']['num_clips']} train and "
        f"{splits['validation']['num_clips']} validation clips "
        f"({sum(s['hours'] for s in splits.values()):.2f} h), {len(summary['skipped'])} skipped "
        f"(see {os.path.join(args.out, 'report.md')})."
    )


def _train(args):
    from mmae.config import Config
    from mmae.datasets.prepare import load_dataset_info
    from mmae.training import train

    options = _run_options(args)
    if args.config is None:
        config = Config.load(load_dataset_info(args.data)["config"], overrides=args.overrides)
    else:
        config = _load_config(args)
    if args.init_from:
        from mmae.training.warm_start import warm_start_model_fn

        options["model_fn"] = warm_start_model_fn(
            args.init_from, run_dir=args.run_dir, report=print
        )
    return _finished(train(config, args.data, args.run_dir, **options))


def _train_vocoder(args):
    from mmae.training.vocoder import train_vocoder, vocoder_config

    options = _run_options(args)
    config = vocoder_config(args.data, args.config, args.overrides, run_dir=args.run_dir)
    summary = train_vocoder(config, args.data, args.run_dir, init_from=args.init_from, **options)
    return _finished(summary)


def _prepare_lexicon(args):
    from mmae.datasets.words import prepare_lexicon
    from mmae.text.lexicon import DICTIONARY_WORD_LIST

    word_lists = [DICTIONARY_WORD_LIST] if args.word_list is None else args.word_list
    info = prepare_lexicon(args.out, _load_config(args), word_lists=word_lists)
    splits = info["splits"]
    print(
        f"Wrote {args.out}: a lexicon of {info['lexicon']['entries']} entries "
        f"({info['lexicon']['seconds']:.0f} s), {splits['train']['num_clips']} train and "
        f"{splits['validation']['num_clips']} held-out words."
    )


def _train_g2p(args):
    from mmae.training.g2p import g2p_config, train_g2p

    options = _run_options(args)
    config = g2p_config(args.data, args.config, args.overrides, run_dir=args.run_dir)
    summary = train_g2p(config, args.data, args.run_dir, init_from=args.init_from, **options)
    return _finished(summary)


def _predict_mels(args):
    from mmae.datasets.predicted import predict_mels

    written = predict_mels(args.run_dir, args.data, args.out, progress=not args.quiet)
    print(f"Wrote {written} clips with {args.run_dir}'s log-mels to {args.out}.")


def _serve(args):
    try:
        import uvicorn

        from mmae.serving import SpeechEngine, create_app
    except ImportError as error:
        raise RuntimeError(
            f'mmae serve needs the serve extra ({error}): pip install "mmae[serve]", '
            "or bash scripts/setup.sh serve"
        ) from None
    from mmae import pretrained
    from mmae.serving.backends import SavedModelBackend, SynthesizerBackend
    from mmae.synthesis import Synthesizer

    if args.saved_model is not None:
        backend = SavedModelBackend(args.saved_model)
    elif args.run_dir is None:
        synthesizer = Synthesizer.from_pretrained(vocoder=args.vocoder)
        backend = SynthesizerBackend(synthesizer, _speaker_names(pretrained.path_of()))
    else:
        synthesizer = Synthesizer.from_run(args.run_dir, vocoder=args.vocoder)
        backend = SynthesizerBackend(synthesizer, _speaker_names(args.run_dir))
    engine = SpeechEngine(
        backend, args.max_batch, args.max_wait_ms, args.max_queue, workers=args.workers
    )
    app = create_app(engine, args.max_characters)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(f"mmae serve: http://{args.host}:{args.port}/ (Ctrl-C stops it)", flush=True)
    # On SIGTERM or Ctrl-C, uvicorn stops accepting, lets in-flight requests
    # finish, then the app's lifespan stops the engine.
    uvicorn.run(
        app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=30
    )


def _speaker_names(directory):
    """The speakers of a run or pack, as its dataset.json names them ("default" if unnamed)."""
    path = os.path.join(directory, "dataset.json")
    names = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            names = json.load(f).get("speakers") or []
    return [name or "default" for name in names] or ["default"]


def _synthesize(args):
    import numpy as np
    import soundfile

    from mmae.progress import progress_bar
    from mmae.synthesis import Synthesizer

    if (args.text is None) == (args.text_file is None):
        raise ValueError("give either TEXT (with -o) or --text-file (with --out-dir).")
    if args.text is not None:
        if not args.output:
            raise ValueError("TEXT needs -o/--output FILE.wav.")
        jobs = [(args.text, args.output)]
    else:
        if not args.out_dir:
            raise ValueError("--text-file needs --out-dir DIR.")
        with open(args.text_file, encoding="utf-8") as f:
            lines = [line.strip() for line in f]
        lines = [line for line in lines if line]
        if not lines:
            raise ValueError(f"{args.text_file} has no text.")
        os.makedirs(args.out_dir, exist_ok=True)
        width = max(4, len(str(len(lines))))
        jobs = [
            (line, os.path.join(args.out_dir, f"{i + 1:0{width}d}.wav"))
            for i, line in enumerate(lines)
        ]
    if args.run_dir is None:
        synthesizer = Synthesizer.from_pretrained(batch_size=args.batch_size, vocoder=args.vocoder)
    else:
        synthesizer = Synthesizer.from_run(
            args.run_dir, batch_size=args.batch_size, vocoder=args.vocoder
        )
    seconds = 0.0
    progress = progress_bar(total=len(jobs), unit="text", disable=args.quiet or len(jobs) == 1)
    # A batch of texts per call: sentences of different texts share batches.
    for start in range(0, len(jobs), args.batch_size):
        chunk = jobs[start : start + args.batch_size]
        texts = [text for text, _ in chunk]
        options = dict(speaking_rate=args.rate, speaker_id=args.speaker)
        if args.plot:  # One model run gives both.
            audios, mels = zip(*synthesizer.synthesize_with_mel(texts, **options), strict=True)
        else:
            audios, mels = synthesizer.synthesize(texts, **options), [None] * len(chunk)
        for (_, path), audio, mel in zip(chunk, audios, mels, strict=True):
            soundfile.write(path, np.asarray(audio), synthesizer.sample_rate)
            seconds += len(audio) / synthesizer.sample_rate
            if mel is not None:
                _plot_mel(mel, os.path.splitext(path)[0] + ".png", synthesizer.config.audio)
        progress.update(len(chunk))
    progress.close()
    where = jobs[0][1] if len(jobs) == 1 else args.out_dir
    print(f"Wrote {len(jobs)} file(s), {seconds:.1f} s of audio, to {where}.")


def _plot_mel(mel, path, audio_config):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(max(4, len(mel) / 60), 3))
    image = axis.imshow(mel.T, origin="lower", aspect="auto", interpolation="none")
    axis.set(
        xlabel=f"frame ({audio_config.frame_step / audio_config.sample_rate * 1000:.0f} ms)",
        ylabel="mel channel",
    )
    figure.colorbar(image, ax=axis, label="log mel")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _export(args):
    from mmae import pretrained
    from mmae.export import export_saved_model, export_tflite, export_tflite_vocoder
    from mmae.runs import load

    args.run_dir = args.run_dir or pretrained.path_of()
    if args.tflite_vocoder:
        config, _ = load(args.run_dir, args.checkpoint)
        tflite_vocoder = export_tflite_vocoder(args.vocoder, args.tflite_vocoder, config.audio)

    if args.tflite:
        # First: converted after the SavedModel, the same process's lookup
        # tables make the converter warn (harmlessly) about table initializers.
        tflite = export_tflite(args.run_dir, args.tflite, checkpoint=args.checkpoint)
    summary = export_saved_model(
        args.run_dir,
        args.out,
        checkpoint=args.checkpoint,
        data_dir=args.data,
        overwrite=args.overwrite,
        vocoder=args.vocoder,
    )
    print(
        f"Exported {args.run_dir} to {args.out}: {summary['saved_model_bytes'] / 1e6:.1f} MB in "
        f"{summary['seconds']:.0f} s (see {os.path.join(args.out, 'export.json')})."
    )
    if args.tflite:
        print(f"Wrote {args.tflite}: {tflite['bytes'] / 1e6:.2f} MB, {tflite['ops']} ops.")
    if args.tflite_vocoder:
        print(
            f"Wrote {args.tflite_vocoder} ({tflite_vocoder['vocoder']}): "
            f"{tflite_vocoder['bytes'] / 1e6:.2f} MB, {tflite_vocoder['ops']} ops."
        )


def _evaluate(args):
    from mmae.evaluation import evaluate

    evaluate(
        args.run_dir,
        args.data,
        args.out or os.path.join(args.run_dir, "evaluation"),
        limit=args.limit,
        progress=not args.quiet,
        write_audio=not args.no_audio,
        all_audio=args.all_audio,
        num_worst=args.num_worst,
        corpus=args.corpus,
        checkpoint=args.checkpoint,
        rows=("model",) if args.model_only else None,
        vocoder=args.vocoder,
        dnsmos=not args.no_dnsmos,
    )


def _show_config(args):
    import yaml

    print(yaml.safe_dump(_load_config(args).to_dict(), sort_keys=False, allow_unicode=True), end="")


if __name__ == "__main__":
    sys.exit(main())
