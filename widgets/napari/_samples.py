"""napari sample data from medlab.datasets (offline: the phantom is synthetic, the real data come
from the dataset registry's store)."""

from __future__ import annotations

from ._layers import image_to_layer
from ._view import install_current

__all__ = ["ct_phantom", "hc18_ultrasound", "ibsi_ct_phantom"]


def ct_phantom():
    """A seeded synthetic CT (HU) with its lesion labels (exact ground truth)."""
    import medlab.datasets

    install_current()
    ph = medlab.datasets.ct_phantom(shape=(48, 128, 128), seed=0)
    layers = [image_to_layer(ph.image, "CT phantom (HU)", modality="CT")]
    if ph.labels is not None:
        layers.append(image_to_layer(ph.labels, "phantom labels", "labels"))
    return layers


def ibsi_ct_phantom():
    """The IBSI CT radiomics phantom (HU) with its GTV."""
    import medlab.datasets

    install_current()
    case = medlab.datasets.load("ibsi_ct_phantom", progress=False)
    return [image_to_layer(case.image, "IBSI CT phantom (HU)", modality="CT"),
            image_to_layer(case.labels["gtv"], "GTV", "labels")]


def hc18_ultrasound():
    """An HC18 fetal head ultrasound (2D) with its head mask."""
    import medlab.datasets

    case = medlab.datasets.load("hc18", case="000_HC", progress=False)
    return [image_to_layer(case.image, "HC18 000_HC"), image_to_layer(case.labels["head"], "head", "labels")]
