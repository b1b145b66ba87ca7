"""The pretrained sample model that ships with the package, and how it is made.

A pretrained model is a small directory: the run's `config.yaml`, its
`dataset.json` (vocabulary, speakers, mel statistics) and `weights.npz`, the
weights that synthesis uses (text encoder, length regulator, duration
predictor, decoder, speakers) in float16. The audio encoder and the aligner
only matter for training, so they are left out; loading builds the whole
model and leaves them at their initial values.

    python -m mmae.pretrained --run RUN --out mmae/assets/flite_slt

packs a training run (the bundled one comes from the 30-minute `joint` run of
bench/quality_bench.py; see README.md), and

    synthesizer = mmae.Synthesizer.from_pretrained()      # or from_run(RUN)

loads it. `mmae synthesize` uses it when no `--run` is given.
"""

import json
import os

import numpy as np

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
DEFAULT = "flite_slt"
WEIGHTS = "weights.npz"
# The model parts synthesis needs (CrossModalAutoencoder attribute names).
INFERENCE_PARTS = ("text_encoder", "length_regulator", "duration_predictor", "decoder", "speakers")


def available():
    """Names of the pretrained models bundled with the package."""
    if not os.path.isdir(ASSETS):
        return []
    return sorted(
        name for name in os.listdir(ASSETS) if os.path.exists(os.path.join(ASSETS, name, WEIGHTS))
    )


def path_of(name=DEFAULT):
    """The directory of a bundled pretrained model (or `name` itself if it is one)."""
    if os.path.exists(os.path.join(name, WEIGHTS)):
        return name
    path = os.path.join(ASSETS, name)
    if not os.path.exists(os.path.join(path, WEIGHTS)):
        raise FileNotFoundError(
            f"No pretrained model {name!r}; bundled: {', '.join(available()) or 'none'}."
        )
    return path


def pack(run_dir, out_dir, checkpoint=None):
    """Writes a training run's inference weights (float16) and config to `out_dir`.

    Returns the size of `weights.npz` in bytes.
    """
    from mmae.training import load_run

    config, model = load_run(run_dir, checkpoint)
    weights = {
        key: variable.numpy().astype(np.float16) for key, variable in _inference_weights(model)
    }
    os.makedirs(out_dir, exist_ok=True)
    config.save(os.path.join(out_dir, "config.yaml"))
    with open(os.path.join(run_dir, "dataset.json"), encoding="utf-8") as f:
        info = json.load(f)
    # Only what building the model needs; the per-clip lengths are large.
    info = {key: info[key] for key in ("speakers", "mel_mean", "mel_std", "config")}
    with open(os.path.join(out_dir, "dataset.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
    path = os.path.join(out_dir, WEIGHTS)
    np.savez_compressed(path, **weights)
    return os.path.getsize(path)


def load(name=DEFAULT):
    """Builds a pretrained model: returns `(config, model)`."""
    from mmae.config import Config
    from mmae.models import build_model

    path = path_of(name)
    config = Config.load(os.path.join(path, "config.yaml"))
    with open(os.path.join(path, "dataset.json"), encoding="utf-8") as f:
        info = json.load(f)
    model = build_model(config, info)
    with np.load(os.path.join(path, WEIGHTS)) as stored:
        expected = dict(_inference_weights(model))
        if set(stored.files) != set(expected) or any(
            stored[key].shape != tuple(expected[key].shape) for key in expected
        ):
            raise ValueError(f"{path} does not match the model its config.yaml builds.")
        for key, variable in expected.items():
            variable.assign(stored[key].astype(np.float32))
    return config, model


def _inference_weights(model):
    """(key, variable) for the weights synthesis uses; keys are "part/index".

    Keras names layers with process-wide counters ("conv_block_7"), so a
    weight's path depends on what else was built first; its position within
    its part does not.
    """
    for part in INFERENCE_PARTS:
        layer = getattr(model, part, None)
        if layer is not None:
            for index, variable in enumerate(layer.weights):
                yield f"{part}/{index:03d}", variable


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Pack a training run as a pretrained model.")
    parser.add_argument("--run", required=True, help="a training run directory")
    parser.add_argument("--out", required=True, help="the pretrained model directory to write")
    parser.add_argument("--checkpoint", default=None, help="a checkpoint prefix (default: latest)")
    args = parser.parse_args(argv)
    size = pack(args.run, args.out, args.checkpoint)
    print(f"Wrote {args.out} (weights.npz: {size / 1e6:.1f} MB).")


if __name__ == "__main__":
    main()
