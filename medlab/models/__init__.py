"""Deep learning on medlab images with Keras 3 (TensorFlow by default; torch and JAX backends too).

``import medlab.models`` is light: Keras and its backend are imported on first use of a name that
needs them (``pip install 'medlab[dl]'``). Choose another backend with :func:`use_backend` (or
``KERAS_BACKEND``) before the first model is built.

Networks (:mod:`~medlab.models.networks`)
    :func:`unet` (2D/3D U-Net), :func:`classifier` (small residual CNN).
Losses and metrics (:mod:`~medlab.models.losses`)
    :func:`cross_entropy` (the seed's, ``-sum_i sum_c y_ic log p_ic``), :func:`soft_dice_loss`,
    :func:`dice_ce_loss`, :func:`focal_loss`, their Keras classes, :class:`DiceScore`.
Data (:mod:`~medlab.models.data`, no Keras)
    :func:`resample_to`, :func:`resample_onto`, :func:`to_array`, :func:`labels_to_array`,
    :func:`normalize`, :class:`Augment`, :func:`sample_patches`, :func:`grouped_split`.
Training (:mod:`~medlab.models.training`)
    :func:`train` (progress bar, early stopping, checkpoints, clean stop), :func:`set_seed`.
Inference (:mod:`~medlab.models.inference`)
    :func:`segment` (2D whole image, 3D sliding window; result on the input grid),
    :func:`classify`, :func:`sliding_window`, :func:`gaussian_importance`.
Explanations (:mod:`~medlab.models.explain`)
    :func:`grad_cam`, :func:`saliency`, :func:`occlusion`, :func:`mc_dropout`.
Models on disk (:mod:`~medlab.models.io`)
    :class:`TrainedModel`, :func:`save`, :func:`load`, :func:`pretrained`, :func:`list_pretrained`.
Model cards (:mod:`~medlab.models.cards`, no Keras)
    :func:`card` (Markdown/HTML from ``info``), :func:`check_input` (is an image like the training
    images, is it the model's task), :func:`input_domain`, :class:`ModelInputWarning`.
Device (:mod:`~medlab.models._backend`)
    :func:`device_report`, :func:`use_backend`, :func:`backend`.
Use cases
    HC18 (:mod:`~medlab.models.hc18`; its ellipse fit is :func:`medlab.segmentation.fit_ellipse`):
    :func:`head_circumference`, :func:`hc18_split`, :func:`measure_head` (HC with a QC verdict),
    :func:`evaluate_hc18`, :func:`hc18_summary`, :func:`hc18_reference_repeatability`,
    :func:`choose_qc_thresholds`. BUSI (:mod:`~medlab.models.busi`):
    :func:`load_busi`, :func:`busi_split`, :func:`busi_subset`, :func:`evaluate_busi`,
    :func:`busi_performance`, :func:`threshold_at_sensitivity`; :func:`roc_auc_ci` (the one in
    :mod:`medlab.metrics`, re-exported).
"""

from __future__ import annotations

from medlab._lazy import attach

# name -> submodule; the submodules that import Keras load only when one of their names is used
_NAMES = {
    "use_backend": "_backend",
    "backend": "_backend",
    "device_report": "_backend",
    "unet": "networks",
    "classifier": "networks",
    "MCDropout": "networks",
    "cross_entropy": "losses",
    "soft_dice_loss": "losses",
    "dice_ce_loss": "losses",
    "focal_loss": "losses",
    "CrossEntropy": "losses",
    "SoftDiceLoss": "losses",
    "DiceCELoss": "losses",
    "FocalLoss": "losses",
    "DiceScore": "losses",
    "get_loss": "losses",
    "resample_to": "data",
    "resample_onto": "data",
    "to_array": "data",
    "labels_to_array": "data",
    "normalize": "data",
    "Augment": "data",
    "sample_patches": "data",
    "grouped_split": "data",
    "train": "training",
    "set_seed": "training",
    "TrainingResult": "training",
    "ArrayDataset": "training",
    "segment": "inference",
    "segment_flips": "inference",
    "FLIPS": "inference",
    "classify": "inference",
    "sliding_window": "inference",
    "gaussian_importance": "inference",
    "as_trained": "inference",
    "grad_cam": "explain",
    "saliency": "explain",
    "occlusion": "explain",
    "mc_dropout": "explain",
    "card": "cards",
    "check_input": "cards",
    "input_domain": "cards",
    "ModelInputWarning": "cards",
    "TrainedModel": "io",
    "save": "io",
    "load": "io",
    "pretrained": "io",
    "list_pretrained": "io",
    "roc_auc_ci": "roc",
    "AUC": "roc",
    "HC18_BOUNDARY_OFFSET_PX": "hc18",
    "head_circumference": "hc18",
    "hc18_split": "hc18",
    "evaluate_hc18": "hc18",
    "measure_head": "hc18",
    "hc18_summary": "hc18",
    "hc18_reference_repeatability": "hc18",
    "choose_qc_thresholds": "hc18",
    "head_qc": "hc18",
    "HeadQC": "hc18",
    "HeadMeasurement": "hc18",
    "HC18_QC": "hc18",
    "hc_band": "hc18",
    "load_busi": "busi",
    "busi_split": "busi",
    "busi_subset": "busi",
    "evaluate_busi": "busi",
    "threshold_at_sensitivity": "busi",
    "busi_performance": "busi",
}

_SUBMODULES = ("networks", "losses", "data", "training", "inference", "explain", "io", "roc", "hc18", "busi", "cards")

__all__ = sorted(_NAMES)

__getattr__, __dir__ = attach(__name__, submodules=_SUBMODULES, names=_NAMES, listing=[*__all__, *_SUBMODULES])
