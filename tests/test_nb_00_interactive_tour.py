"""notebooks/tutorials/00_interactive_tour.ipynb: every widget on real images, run unattended.

The recorded numbers are medlab results reached through the widgets' setters (values measured
with the defaults in the comments). The executed notebook must carry each widget's picture as
a static PNG next to the live view, so an exported report shows it.
"""

import nbformat
import pytest
from notebook_support import run


@pytest.mark.notebook
def test_notebook(tmp_path):
    r = run("tutorials/00_interactive_tour.ipynb", tmp_path, SOLUTIONS=True)
    assert r["exercises_passed"] == 2  # every exercise's hidden solution passes its check
    assert (r["ct_window"], r["ct_level"]) == (1800.0, 400.0)  # the 'bone' preset, set last
    assert r["bone_volume_ml"] == pytest.approx(156.22, abs=0.01)  # >= 300 HU in the IBSI phantom
    assert -500 < r["otsu_hu"] < -300  # -420: Otsu separates the phantom from the air around it
    assert r["pet_suvmax"] == pytest.approx(7.911, abs=0.001)
    assert r["pet_region_ml"] == pytest.approx(140.9, abs=0.1)  # 40% of SUVmax, grown from it
    assert r["pet_mask_ml"] == pytest.approx(366.08, abs=0.01)
    assert r["pet_dice"] >= 0.44  # 0.465: fixed-fraction growing misses the cooler tumour parts
    assert len(r["pet_seed_mm"]) == 3
    # RegionStats under the seeds: the same region, its SUVs between the growing bound and SUVmax
    assert r["pet_stats_ml"] == r["pet_region_ml"] and r["pet_stats_max_suv"] == r["pet_suvmax"]
    assert 0.4 * r["pet_suvmax"] <= r["pet_stats_mean_suv"] < r["pet_suvmax"]
    assert r["us_thresholds"] == [28.0, 82.0]
    assert r["us_bright_area_mm2"] == pytest.approx(209.48, abs=0.01)
    assert r["us_region_mm2"] > 5 * r["us_head_mm2"]  # 1197 vs 159 mm²: the leak the notebook shows
    # RegistrationBlender: a background registration of the MR moved by a known rigid motion
    assert r["reg_status"] == "done" and 0 < r["reg_iterations"] <= 50
    assert r["tre_start_mm"] > 5.0  # 7.97 mm: the known motion, over the tumour
    assert r["tre_mm"] < 1.0  # 0.21 mm: registered back (0.54 mm before the 50 000-sample cap, 481f7da)
    # ModelRunner: the pretrained U-Net on the case, a session model trained in the background
    assert r["model_device"] in ("CPU", "GPU")
    assert r["model_dice"] >= 0.92  # 0.947 on 000_HC (the smallest HC18 head); 0.824 with the U-Net first pass
    assert r["session_epochs"] == 2 and r["session_stop_reason"] == "completed"
    assert r["session_models"] == ["busi_effnet", "busi_resnet", "hc18_unet", "small U-Net (session)"]
    # View3D on the STS CT viewer: NiiVue holds the CT, the PET over it and the viewer's label layer
    assert r["view3d_volumes"] == ["image.nii.gz", "overlay.nii.gz", "labels-overlay.nii.gz"]
    assert r["view3d_colormaps"] == ["gray", "hot", "red"] and r["view3d_labels"] == ["overlay"]
    # its crosshair followed the viewer's coronal slice to the PET seed (y 135; 101 before, the centre)
    nz, ny, nx = r["sts_shape"]
    z, y, x = r["view3d_crosshair"]
    assert y == r["sts_index"] == r["sts_seed"][1] != ny // 2 and (z, x) == (nz // 2, nx // 2)
    # NiiVue's position: fractions of its RAS volume (x and y run against numpy's LPS x and y)
    assert r["view3d_crosshair_pos"] == pytest.approx([1 - (x + 0.5) / nx, 1 - (y + 0.5) / ny, (z + 0.5) / nz])

    nb = nbformat.read(tmp_path / "00_interactive_tour.ipynb", as_version=4)
    widget_outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                      if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    # CT panel, CT viewer, PET panel, STS CT, ultrasound panel, registration blender, model runner,
    # View3D
    assert len(widget_outputs) == 8
    assert all(o["data"]["image/png"].startswith("iVBORw0KGgo") for o in widget_outputs)  # PNG
    # shown at screen size (View3D's three planes: their own size)
    assert all(o["metadata"]["image/png"]["width"] == 512 for o in widget_outputs[:7])
    # every live view carries its picture: the STS CT is a panel with its viewer, not the window
    # controls alone (which showed sliders and no image)
    texts = [o["data"]["text/plain"] for o in widget_outputs]
    assert texts[3].startswith("Panel(children=(SliceViewer(") and "STS_001 CT" in texts[3]
    assert sum(t.startswith(("Panel(", "SliceViewer(", "RegistrationBlender(", "ModelRunner(")) for t in texts) == 7
    assert texts[7].startswith("View3D(")
    assert "· model: hc18_unet" in texts[6]  # the runner's title names the selected model
    # the last cell shows the record table only, not the raw dict after it
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert [o["output_type"] for o in last.outputs] == ["display_data"]

    # nbconvert shows the PNG wherever it has no widget state to render the live view from (a
    # notebook saved from JupyterLab by default; papermill with store_widget_state=False)
    from nbconvert import HTMLExporter

    nb.metadata.pop("widgets", None)
    html, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    assert html.count('src="data:image/png;base64,iVBORw0KGgo') >= 8
