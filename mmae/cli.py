"""The `mmae` command line. It only parses arguments and calls library functions.

mmae prepare SOURCE OUT [--config PRESET_OR_FILE] [--set key=value ...]
mmae train --data PREPARED --run-dir RUN [--config PRESET_OR_FILE] [--set key=value ...]
mmae config [--config PRESET_OR_FILE] [--set key=value ...]
"""

import argparse
import os
import sys


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    # TensorFlow's C++ start-up chatter buries the progress bar; errors still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        print(
            f"\nmmae {args.command}: interrupted. {_RESUME_HINTS.get(args.command, '')}",
            file=sys.stderr,
        )
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        # Expected failures (bad input, bad config) get a message, not a traceback.
        print(f"mmae {args.command}: error: {error}", file=sys.stderr)
        return 2


_RESUME_HINTS = {
    "prepare": "Finished shards are kept; run the same command again to resume.",
    "train": "Checkpoints are kept; run the same command again to resume from the last one.",
}


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
    train.add_argument("--data", required=True, help="a directory made by `mmae prepare`")
    train.add_argument("--run-dir", required=True, help="where checkpoints and logs go")
    _add_config_arguments(train)
    train.add_argument(
        "--tpu", default=None, help='TPU name or address ("local" on a TPU VM, "auto" on Colab)'
    )
    train.add_argument(
        "--steps",
        type=int,
        default=None,
        help="stop at this step (the schedule still spans train.steps; rerun to go on)",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=_train)

    config = commands.add_parser("config", help="print the resolved configuration as YAML")
    _add_config_arguments(config)
    config.set_defaults(run=_show_config)
    return parser


def _add_config_arguments(parser):
    parser.add_argument(
        "--config", default=None, help="preset name (ljspeech, flite16k, tiny) or a YAML/JSON file"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set audio.sample_rate=16000 (repeatable)",
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

    if args.config is None:
        config = Config.load(load_dataset_info(args.data)["config"], overrides=args.overrides)
    else:
        config = _load_config(args)
    summary = train(
        config,
        args.data,
        args.run_dir,
        tpu=args.tpu,
        progress=not args.quiet,
        max_steps=args.steps,
    )
    if summary["stopped"] in ("SIGINT", "SIGTERM"):
        # The trainer saved a checkpoint and logged how to resume.
        return 130 if summary["stopped"] == "SIGINT" else 143
    print(summary["message"])


def _show_config(args):
    import yaml

    print(yaml.safe_dump(_load_config(args).to_dict(), sort_keys=False, allow_unicode=True), end="")


if __name__ == "__main__":
    sys.exit(main())
