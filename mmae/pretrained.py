"""The pretrained sample model that ships with the package, and how it is made.

A pretrained model is a small directory: the run's `config.yaml`, its
`dataset.json` (vocabulary, speakers, mel statistics) and `weights.*`, the
weights that synthesis uses (the model's `inference_parts`: text encoder,
length regulator, duration predictor, decoder, speakers) in float16, in the
project's one weight format (`mmae.weights`). The audio encoder and the
aligner only matter for training, so they are left out; loading builds the
whole model and leaves them at their initial values.

    python -m mmae.pretrained --run RUN --out mmae/assets/flite_slt

packs a training run (the bundled one comes from the 30-minute `joint` run of
bench/quality_bench.py; see README.md),

    python -m mmae.pretrained --convert DIR

rewrites a model packed in the old `weights.npz` format,

    python -m mmae.pretrained --vocoder-run RUN --out mmae/assets/vocos_flite16k

packs a `mmae train-vocoder` run (its generator, in float16, and its config;
`mmae.runs.load_vocoder` reads it), and

    synthesizer = mmae.Synthesizer.from_pretrained()      # or from_run(RUN)

loads it (`mmae.runs.load_pretrained`).

    python -m mmae.pretrained --g2p-run RUN --lexicon DIR --out mmae/assets/frontend_en-us

packs the phoneme text frontend: the lexicon of `mmae prepare-lexicon DIR`,
the G2P of `mmae train-g2p --run-dir RUN` (float16) and its held-out error
rates (`mmae.runs.load_frontend` reads it). `mmae synthesize` uses it when no
`--run` is given.
"""

import json
import os

from mmae import runs

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
DEFAULT = "flite_slt"
# A pack's weights go in files of at most this size, which keeps each one
# small enough for a git repository's usual limits.
SHARD_BYTES = 4 * 2**20
# What packing keeps of dataset.json: the per-clip lengths are large.
_INFO_KEYS = ("speakers", "mel_mean", "mel_std", "config")


def available():
    """Names of the pretrained models bundled with the package."""
    if not os.path.isdir(ASSETS):
        return []
    return sorted(
        name for name in os.listdir(ASSETS) if runs.is_pretrained(os.path.join(ASSETS, name))
    )


def path_of(name=DEFAULT):
    """The directory of a bundled pretrained model (or `name` itself if it is one)."""
    if runs.is_pretrained(name):
        return name
    path = os.path.join(ASSETS, name)
    if not runs.is_pretrained(path):
        raise FileNotFoundError(
            f"No pretrained model {name!r}; bundled: {', '.join(available()) or 'none'}."
        )
    return path


def frontend_path(language):
    """The bundled text frontend pack of an espeak-ng voice ("en-us").

    Raises:
        FileNotFoundError: none is bundled for `language`; the message says how to make one.
    """
    path = os.path.join(ASSETS, f"frontend_{language}")
    if not runs.is_frontend(path):
        bundled = sorted(
            n[len("frontend_") :] for n in os.listdir(ASSETS) if n.startswith("frontend_")
        )
        raise FileNotFoundError(
            f"No text frontend is bundled for language {language!r} (bundled: "
            f"{', '.join(bundled) or 'none'}). Make one: mmae prepare-lexicon DIR --set "
            f"text.language={language}; mmae train-g2p --data DIR --run-dir RUN; python -m "
            f"mmae.pretrained --g2p-run RUN --lexicon DIR --out {path}"
        )
    return path


def load(name=DEFAULT):
    """Builds a pretrained model: returns `(config, model)`."""
    return runs.load_pretrained(path_of(name))


def pack(run_dir, out_dir, checkpoint=None):
    """Writes a training run's inference weights (float16) and config to `out_dir`.

    Returns the size of the weights in bytes.
    """
    config, model = runs.load_run(run_dir, checkpoint)
    with open(os.path.join(run_dir, "dataset.json"), encoding="utf-8") as f:
        info = json.load(f)
    return _write(config, info, model, out_dir)


def pack_vocoder(run_dir, out_dir, checkpoint=None):
    """Writes a vocoder run's generator weights (float16) and config to `out_dir`.

    Returns the size of the weights in bytes.
    """
    config, vocoder = runs.load_vocoder(run_dir, checkpoint)
    return save_vocoder(config, vocoder, out_dir)


def save_vocoder(config, vocoder, out_dir, dtype="float16"):
    """Writes a vocoder pack: `config.yaml` and the vocoder's weights, as `runs.load_vocoder` reads.

    Returns the size of the weights in bytes.
    """
    import types

    from mmae.weights import save_weights

    os.makedirs(out_dir, exist_ok=True)
    config.save(os.path.join(out_dir, "config.yaml"))
    holder = types.SimpleNamespace(**{runs.VOCODER_PART: vocoder})
    prefix = os.path.join(out_dir, runs.PRETRAINED_WEIGHTS)
    _remove_weights(out_dir)
    save_weights(
        holder, prefix, parts=[runs.VOCODER_PART], dtype=dtype, max_shard_bytes=SHARD_BYTES
    )
    return _weights_size(out_dir)


def pack_frontend(g2p_run, lexicon_dir, out_dir, checkpoint=None):
    """Writes a text frontend pack: the lexicon, the G2P (float16), its config and report.

    Returns the size of the pack in bytes.
    """
    import tensorflow as tf

    from mmae.config import Config, with_current_frontend
    from mmae.text.g2p import G2P

    # The pack defines this frontend version's phonemes.
    config = with_current_frontend(Config.load(os.path.join(g2p_run, "config.yaml")))
    g2p = G2P.from_run_config(config)
    loaded = runs.restore_weights(g2p, checkpoint or g2p_run)
    _write_frontend(config, g2p, lexicon_dir, out_dir)
    validation = [
        row
        for row in runs.read_metrics(g2p_run, "validation")
        if row["step"] <= runs.checkpoint_step(loaded)
    ]
    with open(os.path.join(lexicon_dir, "dataset.json"), encoding="utf-8") as f:
        lexicon_info = json.load(f)
    report = {
        "checkpoint": os.path.basename(loaded),
        "g2p_parameters": int(sum(tf.size(v).numpy() for v in g2p.weights)),
        "held_out_words": lexicon_info["splits"]["validation"]["num_clips"],
        "train_words": lexicon_info["splits"]["train"]["num_clips"],
        "validation": validation[-1] if validation else None,
        "lexicon": lexicon_info.get("lexicon"),
        "lexicon_word_lists": lexicon_info.get("word_lists", []),
    }
    with open(os.path.join(out_dir, runs.FRONTEND_REPORT), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    return sum(os.path.getsize(os.path.join(out_dir, name)) for name in os.listdir(out_dir))


def relexicon_frontend(pack_dir, lexicon_dir, out_dir):
    """Writes a text frontend pack with the G2P of `pack_dir` and the lexicon of `lexicon_dir`.

    For a new frontend version that changes the lexicon's context entries, or
    a lexicon with more words, without training the G2P again: the G2P is kept, bit
    for bit, with its report (its training and held-out words, which the
    lexicon splits by a hash of the word, so a held-out word stays held out);
    the lexicon, its build figures and the frontend version are new. The
    report keeps the build figures of the lexicon the G2P was trained with
    under "g2p_lexicon". Returns the size of the pack in bytes.
    """
    from mmae.config import with_current_frontend

    config, _, g2p = runs.load_frontend(pack_dir)
    with open(os.path.join(pack_dir, runs.FRONTEND_REPORT), encoding="utf-8") as f:
        report = json.load(f)
    with open(os.path.join(lexicon_dir, "dataset.json"), encoding="utf-8") as f:
        lexicon_info = json.load(f)
    _write_frontend(with_current_frontend(config), g2p, lexicon_dir, out_dir)
    report.setdefault("g2p_lexicon", report.get("lexicon"))
    report["lexicon"] = lexicon_info.get("lexicon")
    report["lexicon_word_lists"] = lexicon_info.get("word_lists", [])
    with open(os.path.join(out_dir, runs.FRONTEND_REPORT), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    return sum(os.path.getsize(os.path.join(out_dir, name)) for name in os.listdir(out_dir))


def _write_frontend(config, g2p, lexicon_dir, out_dir):
    """A frontend pack's config, G2P weights (float16) and lexicon; the report is the caller's."""
    import shutil

    from mmae.datasets.words import LEXICON_FILE
    from mmae.weights import save_weights

    os.makedirs(out_dir, exist_ok=True)
    config.save(os.path.join(out_dir, "config.yaml"))
    _remove_weights(out_dir)
    save_weights(
        g2p,
        os.path.join(out_dir, runs.PRETRAINED_WEIGHTS),
        dtype="float16",
        max_shard_bytes=SHARD_BYTES,
    )
    shutil.copyfile(
        os.path.join(lexicon_dir, LEXICON_FILE), os.path.join(out_dir, runs.FRONTEND_LEXICON)
    )


def convert(path):
    """Rewrites a pretrained model packed as `weights.npz` in the current format, in place.

    Returns the size of the new weights in bytes.
    """
    config, model = runs.load_pretrained(path)
    with open(os.path.join(path, "dataset.json"), encoding="utf-8") as f:
        info = json.load(f)
    size = _write(config, info, model, path)
    os.remove(os.path.join(path, "weights.npz"))
    return size


def _write(config, info, model, out_dir):
    from mmae.weights import save_weights

    os.makedirs(out_dir, exist_ok=True)
    config.save(os.path.join(out_dir, "config.yaml"))
    with open(os.path.join(out_dir, "dataset.json"), "w", encoding="utf-8") as f:
        json.dump({key: info[key] for key in _INFO_KEYS if key in info}, f, indent=1)
    prefix_name = runs.PRETRAINED_WEIGHTS
    prefix = os.path.join(out_dir, prefix_name)
    _remove_weights(out_dir)
    save_weights(
        model, prefix, parts=model.inference_parts, dtype="float16", max_shard_bytes=SHARD_BYTES
    )
    return _weights_size(out_dir)


def _remove_weights(out_dir):
    """Deletes a pack's old weight files, so a rewrite with fewer shards leaves none behind."""
    for name in _weight_files(out_dir):
        os.remove(os.path.join(out_dir, name))


def _weight_files(out_dir):
    prefix_name = runs.PRETRAINED_WEIGHTS
    return [
        name
        for name in os.listdir(out_dir)
        if name.startswith((prefix_name + ".index", prefix_name + ".data-"))
    ]


def _weights_size(out_dir):
    return sum(os.path.getsize(os.path.join(out_dir, name)) for name in _weight_files(out_dir))


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Pack a training run as a pretrained model.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--run", help="a training run directory to pack (with --out)")
    action.add_argument("--convert", metavar="DIR", help="rewrite an old weights.npz model")
    action.add_argument(
        "--vocoder-run", metavar="RUN", help="a `mmae train-vocoder` run to pack (with --out)"
    )
    action.add_argument(
        "--g2p-run", metavar="RUN", help="a `mmae train-g2p` run to pack (with --lexicon, --out)"
    )
    action.add_argument(
        "--relexicon",
        metavar="PACK",
        help="a text frontend pack whose G2P to keep with a new lexicon (with --lexicon, --out)",
    )
    parser.add_argument(
        "--lexicon", help="with --g2p-run or --relexicon: a `mmae prepare-lexicon` directory"
    )
    parser.add_argument("--out", help="the pretrained model directory to write")
    parser.add_argument("--checkpoint", default=None, help="a checkpoint prefix (default: latest)")
    args = parser.parse_args(argv)
    if args.convert:
        size = convert(args.convert)
        print(f"Converted {args.convert} (weights: {size / 1e6:.1f} MB).")
        return
    if not args.out:
        parser.error("--run, --vocoder-run, --g2p-run and --relexicon need --out")
    if args.relexicon:
        if not args.lexicon:
            parser.error("--relexicon needs --lexicon")
        size = relexicon_frontend(args.relexicon, args.lexicon, args.out)
        print(f"Wrote {args.out} ({size / 1e6:.1f} MB).")
        return
    if args.g2p_run:
        if not args.lexicon:
            parser.error("--g2p-run needs --lexicon")
        size = pack_frontend(args.g2p_run, args.lexicon, args.out, args.checkpoint)
        print(f"Wrote {args.out} ({size / 1e6:.1f} MB).")
        return
    if args.vocoder_run:
        size = pack_vocoder(args.vocoder_run, args.out, args.checkpoint)
        print(f"Wrote {args.out} (weights: {size / 1e6:.1f} MB).")
        return
    size = pack(args.run, args.out, args.checkpoint)
    print(f"Wrote {args.out} (weights: {size / 1e6:.1f} MB).")


if __name__ == "__main__":
    main()
