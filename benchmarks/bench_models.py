"""medlab.models speed: U-Net training images/s and inference ms/image, against raw Keras.

unet_train_2d   U-Net (depth 4, 16 base filters, batch normalisation; 484k parameters) on
                128 x 128 single-channel images, batch 8, Dice + cross-entropy, 64 images per
                epoch: ``medlab.models.train`` (seeded batch generator, progress callback,
                no augmentation) vs ``model.fit`` on the same arrays (one-hot labels in memory).
                Epochs are interleaved; the first of each (graph tracing) is discarded.
                Target: ratio <= 1.2 (medlab's pipeline costs at most 20 % over raw Keras).
unet_infer_2d   the same U-Net segmenting HC18-sized ultrasound frames (540 x 800, real images):
                ``medlab.models.segment`` on a list of 16 frames (resampling to 128 x 128,
                z-score, prediction, probabilities resampled back onto the 540 x 800 grid,
                argmax) vs ``model.predict`` on the already preprocessed 16 x 128 x 128 batch.
                Target: <= 60 ms per image end to end on 2 CPU cores.

Both report the device (``medlab.models.device_report``): on a GPU the same script measures the
GPU (mixed precision is then chosen by the builders); in this development environment there is
no GPU, so these are CPU numbers.
"""

from __future__ import annotations

import statistics
import time

SIZE = (128, 128)


def _unet():
    from medlab import models as mm

    mm.set_seed(0)
    return mm.unet(depth=4, base_filters=16, input_size=SIZE)


def _data(n=64):
    import numpy as np

    rng = np.random.default_rng(0)
    y = np.zeros((n, *SIZE), np.int32)
    for k in range(n):
        cy, cx = rng.integers(32, 96, 2)
        r = rng.integers(10, 30)
        yy, xx = np.ogrid[: SIZE[0], : SIZE[1]]
        y[k] = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
    x = (y[..., None] + rng.normal(0, 0.5, (n, *SIZE, 1))).astype(np.float32)
    return x, y


def _device():
    from medlab import models as mm

    rep = mm.device_report()
    name = rep["gpus"][0]["name"] if rep["gpus"] else f"{rep['cpu']} ({rep['cpu_count']} cores)"
    return f"{rep['backend']} on {rep['device']}: {name}"


def bench_unet_train_2d(epochs=4):
    import numpy as np

    from medlab import models as mm
    from medlab.models.losses import DiceCELoss

    keras = mm.networks.keras
    x, y = _data()
    onehot = np.eye(2, dtype=np.float32)[y]
    ours_net, raw_net = _unet(), _unet()
    raw_net.compile(optimizer=keras.optimizers.Adam(1e-3), loss=DiceCELoss())
    ours_net.compile(optimizer=keras.optimizers.Adam(1e-3), loss=DiceCELoss())
    t_ours, t_raw = [], []
    for e in range(epochs):
        t = time.perf_counter()
        mm.train(ours_net, x, y, epochs=1, batch_size=8, progress=lambda f, m: None, seed=e, compile=False)
        t_ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        raw_net.fit(x, onehot, batch_size=8, epochs=1, verbose=0, shuffle=True)
        t_raw.append(time.perf_counter() - t)
    ours, raw = statistics.median(t_ours[1:]), statistics.median(t_raw[1:])
    n = len(x)
    return {
        "medlab_ms": 1e3 * ours / n,
        "baseline_ms": 1e3 * raw / n,
        "ratio": ours / raw,
        "medlab_images_per_s": n / ours,
        "keras_images_per_s": n / raw,
        "target": "ratio <= 1.2 (ms per training image, medlab.models.train vs model.fit)",
        "ok": ours / raw <= 1.2,
        "note": f"U-Net depth 4, 16 filters, {SIZE[0]}x{SIZE[1]}, batch 8, {n} images/epoch; {_device()}",
    }


def bench_unet_infer_2d(repeats=5, n_images=16):
    from medlab import datasets
    from medlab import models as mm

    net = mm.TrainedModel(_unet(), task="segmentation", input_size=SIZE)
    cases = datasets.cases("hc18")[:n_images]
    images = [datasets.load("hc18", case=c, progress=False).image for c in cases]
    x = mm.to_array(images, size=SIZE)
    mm.segment(net, images, batch_size=n_images)  # warm-up (graph tracing)
    net.model.predict(x, batch_size=n_images, verbose=0)
    t_ours, t_raw = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        mm.segment(net, images, batch_size=n_images)
        t_ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        net.model.predict(x, batch_size=n_images, verbose=0)
        t_raw.append(time.perf_counter() - t)
    ours, raw = statistics.median(t_ours) / n_images, statistics.median(t_raw) / n_images
    return {
        "medlab_ms": 1e3 * ours,
        "baseline_ms": 1e3 * raw,
        "ratio": ours / raw,
        "target": "<= 60 ms per 540x800 frame end to end (medlab.models.segment)",
        "ok": 1e3 * ours <= 60,
        "note": f"{n_images} HC18 frames 540x800 -> {SIZE[0]}x{SIZE[1]} -> back; baseline: model.predict on the "
                f"preprocessed batch; {_device()}",
    }


BENCHMARKS = {"unet_train_2d": bench_unet_train_2d, "unet_infer_2d": bench_unet_infer_2d}
