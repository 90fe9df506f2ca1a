"""HF transformers' side of the media preprocessing benchmark (docs/perf.md), one CPU thread.

    python3 scripts/bench/media_hf.py make-inputs DIR             # DIR/bench.jpg (1920x1080), DIR/bench_60s_44k.npy
    python3 scripts/bench/media_hf.py image IN.jpg REPEATS       # PIL decode + Gemma4Unified image processor, 280 tokens
    python3 scripts/bench/media_hf.py audio IN_44k.npy REPEATS   # mono downmix + torchaudio resample + HF audio framing

Prints one line "NAME: X.XX ms per run (mean of N, one thread)". The audio input is 60 s of 44.1 kHz stereo
float32 [2, samples] (HF cannot decode MP3 on the GPU machine: no FFmpeg, torchcodec or soundfile there), so
both sides are timed from the decoded array; unigemma's MP3 decoding is timed separately (docs/perf.md).
"""
import sys
import time

import numpy as np
import torch
import transformers

torch.set_num_threads(1)


def find_class(*parts):
    for name in dir(transformers):
        if name.startswith("Gemma4Unified") and all(p in name for p in parts):
            return getattr(transformers, name)
    raise SystemExit(f"no transformers class Gemma4Unified*{'*'.join(parts)} in {transformers.__version__}")


def timed(name, repeats, fn):
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    ms = (time.perf_counter() - t0) * 1000 / repeats
    print(f"{name}: {ms:.2f} ms per run (mean of {repeats}, one thread)", flush=True)


def make_inputs(out_dir):
    from PIL import Image
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:1080, 0:1920]
    base = np.stack([x * 255 // 1919, y * 255 // 1079, (x + y) * 255 // 2998], axis=-1)
    img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(f"{out_dir}/bench.jpg", quality=90)
    t = np.arange(44100 * 60) / 44100.0
    music = sum(0.08 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.18, 329.63, 440.0, 659.25))
    stereo = np.stack([music, 0.8 * music]) + rng.normal(0, 0.01, (2, t.size))
    np.save(f"{out_dir}/bench_60s_44k.npy", stereo.astype(np.float32))


def bench_image(path, repeats):
    from PIL import Image
    proc_cls = find_class("ImageProcessor")
    proc = proc_cls(max_soft_tokens=280)
    print(f"HF image processor: {proc_cls.__name__}", flush=True)

    def run():
        img = Image.open(path)
        img.load()
        out = proc(images=img, return_tensors="pt")
        return out
    timed("HF JPEG 1920x1080 -> 280 tokens (PIL decode + processor)", repeats, run)


def bench_audio(path, repeats):
    import torchaudio
    wave = torch.from_numpy(np.load(path))  # [channels, samples] at 44.1 kHz
    fe_cls = find_class("FeatureExtractor")
    fe = fe_cls()
    print(f"HF audio feature extractor: {fe_cls.__name__}", flush=True)

    def run():
        mono = wave.mean(dim=0)
        res = torchaudio.functional.resample(mono, 44100, 16000)
        return fe(res.numpy(), sampling_rate=16000, return_tensors="pt")
    timed("HF 60 s 44.1 kHz stereo -> 16 kHz frames (resample + feature extractor; no MP3 decode)", repeats, run)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "make-inputs":
        make_inputs(sys.argv[2])
    elif cmd == "image":
        bench_image(sys.argv[2], int(sys.argv[3]))
    elif cmd == "audio":
        bench_audio(sys.argv[2], int(sys.argv[3]))
    else:
        raise SystemExit(__doc__)
