"""The data benchmarks' figure: one panel per part."""

from bench.harness import bar_panel, pyplot, save_figure


def plot(results, path):
    import numpy as np

    plt = pyplot()

    figure, (left, middle, right) = plt.subplots(
        1, 3, figsize=(19, 6), gridspec_kw={"width_ratios": [1.1, 1.6, 0.9]}
    )
    machine = results["machine"]
    figure.suptitle(
        f"mmae data benchmarks ({'quick' if results['quick'] else 'full'} run, "
        f"{results['date'][:10]}; {machine['cpu_count']} CPUs, TF {machine['tensorflow']})",
        fontsize=13,
    )

    # 1. prepare: clips/s for jobs=1 and jobs=2 at each corpus size.
    prepare = results["prepare"]
    scaling = prepare["scaling"]
    positions = np.arange(len(scaling))
    width = 0.38
    for offset, jobs, color in ((-width / 2, 1, "#4c72b0"), (width / 2, 2, "#dd8452")):
        rates = [entry[f"jobs{jobs}_clips_per_s"] for entry in scaling]
        bars = left.bar(positions + offset, rates, width, color=color, label=f"jobs={jobs}")
        for bar, rate in zip(bars, rates, strict=True):
            left.annotate(
                f"{rate:.0f}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=9,
            )
    left.set_xticks(
        positions,
        [
            f"{entry['num_clips']} clips\njobs2/jobs1\n{entry['speedup_jobs2_over_jobs1']:.3g}x"
            for entry in scaling
        ],
        fontsize=8.5,
    )
    mean_clip = prepare["source_audio_s"] / prepare["num_clips"]
    left.set_xlabel(f"corpus size (clips of data/sample, {mean_clip:.1f} s each on average)")
    left.set_ylabel("throughput (clips per wall-clock second)")
    left.legend(loc="upper center", ncols=2)
    left.set_ylim(0, 1.25 * max(e[f"jobs{j}_clips_per_s"] for e in scaling for j in (1, 2)))
    title = (
        "1. prepare (flite16k), median wall time\n"
        f"data/sample: {prepare['jobs1']['audio_s_per_s']:.0f} (jobs=1) vs "
        f"{prepare['jobs2']['audio_s_per_s']:.0f} (jobs=2) audio-s per s"
    )
    if "linear_fit" in prepare:
        fit = prepare["linear_fit"]
        title += "\nline fit: " + ", ".join(
            f"jobs={jobs} {fit[f'jobs{jobs}']['fixed_s']:.2f} s + "
            f"{fit[f'jobs{jobs}']['ms_per_clip']:.2f} ms/clip"
            for jobs in (1, 2)
        )
    left.set_title(title, fontsize=10)
    left.grid(axis="y", alpha=0.3)

    # 2. mel
    mel = results["mel"]
    names = list(mel["methods"])
    values = [mel["methods"][n]["ms_per_clip"] for n in names]
    positions = bar_panel(middle, names, values, headroom=12)
    for position, name in zip(positions, names, strict=True):
        entry = mel["methods"][name]
        compile_text = f", compile {entry['compile_s']:.2f} s" if entry["compile_s"] >= 0.05 else ""
        middle.annotate(
            f" {entry['ms_per_clip']:.2f} ms  |  {entry['x_real_time']:.0f}x real time  |  "
            f"{entry['speedup_vs_librosa']:.2f}x librosa{compile_text}",
            (entry["ms_per_clip"], position),
            va="center",
            fontsize=8.5,
        )
    middle.set_xlabel(
        f"time per clip (ms, log scale; median of {mel['repeats']} passes over "
        f"{mel['num_clips']} clips, mean {mel['mean_clip_s']} s)"
    )
    middle.set_title(
        "2. log-mel features of the same clips:\nlibrosa vs the tf.signal MelSpectrogram layer",
        fontsize=10,
    )
    middle.grid(axis="x", alpha=0.3, which="both")

    # 3. pipeline
    pipeline = {k: v for k, v in results["pipeline"].items() if "skipped" not in v}
    names = list(pipeline)
    values = [pipeline[n]["mel_frames_per_s"] / 1000.0 for n in names]
    bars = right.bar(
        [f"{pipeline[n]['corpus']}\n({pipeline[n]['train_clips']} train clips)" for n in names],
        values,
        color="#8172b3",
    )
    for bar, name in zip(bars, names, strict=True):
        entry = pipeline[name]
        right.annotate(
            f"{entry['batches_per_s']:.0f}\nbatches/s",
            (bar.get_x() + bar.get_width() / 2, bar.get_height() ** 0.5),
            ha="center",
            va="center",
            color="white",
            fontweight="bold",
        )
    step = results["training_step"]
    right.bar(
        ["training step\n(default model)"], [step["mel_frames_per_s"] / 1000.0], color="#c44e52"
    )
    right.set_yscale("log")
    right.set_ylabel("thousand unpadded mel frames per second (log scale)")
    skipped = "skipped" in results["pipeline"].get("bigger_corpus", {})
    right.set_title(
        "3. tf.data pipeline, train split, vs the training step\n(flite16k defaults)\n"
        + ("no bigger corpus under corpora/; " if skipped else "")
        + f"pipeline {step['pipeline_over_step_frames_ratio']}x faster than the step consumes",
        fontsize=10,
    )
    right.grid(axis="y", alpha=0.3)

    save_figure(figure, path)
