"""The data benchmarks' results in words: the notes stored with them, and a summary."""


def notes(results):
    prepare = results["prepare"]
    probe = prepare["startup"]["fresh_process_probe"]
    fit = prepare.get("linear_fit")
    lines = [
        "Timings on a small shared machine are noisy: compare ratios measured within one run.",
        "prepare: wall time of prepare(source, fresh_temp_dir, config, jobs=N, progress=False), "
        "median of the repeats (jobs=1 and jobs=2 alternate). prepare writes shards on `jobs` "
        "threads (jobs=1: in the calling thread). Timed after a warm-up call, so librosa's "
        "submodules are loaded and the calling thread's mel function is traced (the first call "
        f"took {prepare['startup']['first_prepare_call_in_process_s']:.2f} s for "
        f"{prepare['startup']['first_prepare_call_clips']} clips); each jobs=2 call starts new "
        "pool threads, and each builds its own tokenizer and traces its own mel function.",
        "prepare: every thread's TensorFlow ops share TensorFlow's default thread pools (both "
        "cores), so even jobs=1 uses more than one core for the FFT and matmul.",
    ]
    if fit:
        lines.append(
            "prepare: from a line through wall time vs clip count (fastest run at each size, "
            f"see `scaling`): jobs=2 costs {fit['jobs2']['fixed_s']:.1f} s fixed + "
            f"{fit['jobs2']['ms_per_clip']:.2f} ms/clip, jobs=1 {fit['jobs1']['fixed_s']:.2f} s "
            f"+ {fit['jobs1']['ms_per_clip']:.2f} ms/clip; {break_even_text(fit)}."
        )
    if probe:
        lines.append(
            "prepare, TF start-up of a spawned worker: prepare's workers are threads, so no "
            "worker pays it now, but a fresh process (measured alone, in a subprocess) needs "
            f"{probe['import_tensorflow_and_prepare_s']:.1f} s to import TensorFlow and "
            f"mmae.datasets.prepare, {probe['first_load_audio_s']:.2f} s for its first "
            "load_audio (librosa loads its submodules lazily on the first trim) and "
            f"{probe['first_mel_call_s']:.2f} s to trace and run the mel function once: "
            f"{probe['ready_for_first_clip_s']:.1f} s from exec to its first clip, against "
            f"{probe['steady_clip_s'] * 1000:.0f} ms for a warm clip. Every `mmae prepare` "
            "run pays this once; a process pool would pay it again per worker."
        )
    lines += [
        "mel: every method starts from the same float32 NumPy waveforms (loaded with the "
        "flite16k settings: trimmed, peak-normalised) and ends with NumPy log-mel frames; "
        "ms_per_clip is the median full pass over the clips divided by the clip count; "
        "compile_s is the warm-up pass minus a steady pass (plus dataset construction for "
        "tf_data_map). Batched methods sort clips by length and pad each batch to a whole "
        "number of mel_pad_seconds; the padding is part of the timed work. "
        "librosa.feature.melspectrogram rebuilds its mel filter bank on every call "
        "(librosa_cached_filters shows the cost without that).",
        "pipeline: make_dataset(prepared, config, 'train') (shuffle + repeat) with the flite16k "
        "config defaults, timed after the warm-up batches and iterated in Python; "
        "mel_frames_per_s counts real (unpadded) frames.",
        "training_step: mel frames/s that mmae.training.train consumes with the "
        "preset's default model (jit_compile off, steady intervals only); "
        "pipeline_over_step_frames_ratio is how many times faster the pipeline delivers frames "
        "than that step eats them.",
    ]
    return lines


def break_even_text(fit):
    if not fit["reliable"]:
        return "jobs=2 break-even: not estimable in this run (noise hid the per-clip cost)"
    if fit["break_even_clips"] is None:
        return "jobs=2 never pays off here (it is not faster per clip)"
    return f"jobs=2 pays off above about {fit['break_even_clips']} clips"


def summary_text(results):
    prepare = results["prepare"]
    lines = []
    for entry in prepare["scaling"]:
        lines.append(
            f"prepare {entry['corpus']} ({entry['num_clips']} clips): jobs1 "
            f"{entry['jobs1_clips_per_s']} clips/s, jobs2 {entry['jobs2_clips_per_s']} clips/s, "
            f"jobs2/jobs1 {entry['speedup_jobs2_over_jobs1']}x"
        )
    lines.append(
        f"prepare data/sample audio-s/s: jobs1 {prepare['jobs1']['audio_s_per_s']}, "
        f"jobs2 {prepare['jobs2']['audio_s_per_s']}"
    )
    if "linear_fit" in prepare:
        fit = prepare["linear_fit"]
        lines.append(
            f"prepare fit: jobs1 {fit['jobs1']['fixed_s']} s + {fit['jobs1']['ms_per_clip']} "
            f"ms/clip, jobs2 {fit['jobs2']['fixed_s']} s + {fit['jobs2']['ms_per_clip']} ms/clip, "
            f"break-even {fit['break_even_clips']} clips"
        )
    for name, entry in results["mel"]["methods"].items():
        lines.append(
            f"mel {name}: {entry['ms_per_clip']} ms/clip, {entry['x_real_time']}x real time, "
            f"{entry['speedup_vs_librosa']}x librosa, compile {entry['compile_s']} s, "
            f"max diff {entry['max_abs_diff_vs_librosa']} "
            f"(loud {entry['max_abs_diff_vs_librosa_mel_above_1e-3']})"
        )
    for name, entry in results["pipeline"].items():
        if "skipped" in entry:
            lines.append(f"pipeline {name}: skipped ({entry['skipped']})")
        else:
            lines.append(
                f"pipeline {name}: {entry['batches_per_s']} batches/s, {entry['clips_per_s']} "
                f"clips/s, {entry['mel_frames_per_s']} mel frames/s"
            )
    step = results["training_step"]
    lines.append(
        f"training step: {step['steps_per_s']} steps/s, {step['mel_frames_per_s']} mel frames/s; "
        f"the pipeline is {step['pipeline_over_step_frames_ratio']}x faster"
    )
    lines.append(f"total {results['total_seconds']} s")
    return "\n".join(lines)
