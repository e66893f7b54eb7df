"""medlab.models on the other Keras backends (torch, JAX), each in a fresh interpreter.

CI installs only TensorFlow, so these tests skip there; they run wherever torch or JAX is
importable, e.g. with the local CPU wheel:

    pip install --target /tmp/torchpkgs torch==2.13.0
    PYTHONPATH=/tmp/torchpkgs python -m pytest tests/test_models_backends.py

The script builds, trains, saves and explains tiny models on the backend, then checks that the
file it saved loads under TensorFlow with identical predictions.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = r"""
import json, sys, threading
import numpy as np
import SimpleITK as sitk
from medlab import models as mm

out = {"backend": mm.backend(), "device": mm.device_report()["device"]}
keras = mm.networks.keras
# losses: the seed's cross-entropy and soft Dice, exact
y = np.array([[[[1, 0], [0, 1]]]], "float32"); p = np.array([[[[0.8, 0.2], [0.3, 0.7]]]], "float32")
out["ce"] = float(keras.ops.convert_to_numpy(mm.cross_entropy(y, p))[0])
out["dice"] = float(keras.ops.convert_to_numpy(mm.soft_dice_loss(y, p, smooth=0.0))[0])
# train a tiny U-Net, stop cleanly, save
rng = np.random.default_rng(0)
lab = np.zeros((8, 16, 16), np.int32); lab[:, 4:10, 5:12] = 1
x = (lab[..., None] + rng.normal(0, 0.3, (8, 16, 16, 1))).astype("float32")
mm.set_seed(0)
net = mm.unet(depth=2, base_filters=4, input_size=(16, 16), dropout=0.2, normalization="instance")
res = mm.train(net, x, lab, epochs=8, batch_size=4, learning_rate=1e-2, progress=False, augment=mm.Augment(flip_axes=(1,)))
out["loss_first_last"] = [res.history["loss"][0], res.history["loss"][-1]]
out["stop"] = mm.train(net, x, lab, epochs=3, batch_size=4, progress=lambda f, m: False).stop_reason
tm = mm.TrainedModel(net, classes=("background", "box"), normalization="none")
img = sitk.GetImageFromArray(x[0, ..., 0])
seg = sitk.GetArrayFromImage(mm.segment(tm, img))
out["seg_dice"] = float(2 * (seg & lab[0]).sum() / (seg.sum() + lab[0].sum()))
cam = mm.grad_cam(tm, img); sal = mm.saliency(tm, img); occ = mm.occlusion(tm, img, patch=4)
out["cam_max"], out["sal_max"] = float(sitk.GetArrayFromImage(cam).max()), float(sitk.GetArrayFromImage(sal).max())
unc = mm.mc_dropout(tm, img, samples=4)
out["mc_std_max"] = float(sitk.GetArrayFromImage(unc["std"]).max())
vol = rng.random((11, 19, 14)).astype("float32")
net3 = mm.unet(spatial_dims=3, depth=2, base_filters=2, normalization="instance")
out["seg3d_shape"] = list(mm.segment(net3, vol, patch_size=(8, 8, 8)).shape)
mm.save(tm, sys.argv[1])
np.save(sys.argv[2], np.asarray(keras.ops.convert_to_numpy(net(x[:2]))))
print("RESULT " + json.dumps(out))
"""

LOAD = r"""
import sys, numpy as np
from medlab import models as mm
tm = mm.load(sys.argv[1])
print("MAXDIFF", float(np.abs(np.asarray(tm.model(np.load(sys.argv[2] + ".x.npy"))) - np.load(sys.argv[2])).max()))
"""


def _run(code, *args, backend):
    env = {**os.environ, "KERAS_BACKEND": backend}
    res = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_models_run_on_backend(backend, tmp_path):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (CI runs the TensorFlow backend only)")
    path, pred = tmp_path / "m.keras", tmp_path / "pred.npy"
    stdout = _run(SCRIPT, path, pred, backend=backend)
    out = json.loads(stdout.split("RESULT ", 1)[1])
    assert out["backend"] == backend
    assert out["ce"] == pytest.approx(-(np.log(0.8) + np.log(0.7)), rel=1e-6)
    assert out["dice"] == pytest.approx(1 - np.mean([1.6 / 2.1, 1.4 / 1.9]), rel=1e-6)
    assert out["loss_first_last"][1] < out["loss_first_last"][0]
    assert out["stop"] == "stopped"
    assert out["seg_dice"] > 0.8
    assert out["cam_max"] == pytest.approx(1.0, abs=1e-5) or out["cam_max"] == 0.0
    assert out["sal_max"] == pytest.approx(1.0, abs=1e-5)
    assert out["mc_std_max"] > 0
    assert out["seg3d_shape"] == [11, 19, 14]
    # the file saved on this backend loads under TensorFlow with the same predictions
    rng = np.random.default_rng(0)
    lab = np.zeros((8, 16, 16), np.int32)
    lab[:, 4:10, 5:12] = 1
    x = (lab[..., None] + rng.normal(0, 0.3, (8, 16, 16, 1))).astype("float32")
    np.save(str(pred) + ".x.npy", x[:2])
    diff = float(_run(LOAD, path, pred, backend="tensorflow").split("MAXDIFF ", 1)[1])
    assert diff < 1e-5
