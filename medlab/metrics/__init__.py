"""Measurements against ground truth and of image quality.

Image quality (this file's first part): :func:`snr`, :func:`cnr`, :func:`mse`, :func:`psnr`,
:func:`ssim`. Segmentation and classification metrics (Dice, Hausdorff, surface distances, ...)
join them here from their own private modules.
"""

from __future__ import annotations

from medlab.metrics._quality import cnr, mse, psnr, snr, ssim

__all__ = [
    # image quality (_quality.py)
    "snr",
    "cnr",
    "mse",
    "psnr",
    "ssim",
]
