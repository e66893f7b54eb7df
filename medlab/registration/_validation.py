"""Known ground truth for registration: seeded random transforms and scores against them.

The recipe (used by the tests, the tutorial notebook and the benchmark):

* linear: ``truth = random_rigid(...)`` or ``random_affine(...)``; ``moved = move_image(moving,
  truth)``; ``register(fixed, moved)`` must give back ``truth``;
* deformable: ``truth = random_deformation(image, ...)``; ``warped = resample(image, image,
  truth)`` (``warped(x) = image(truth(x))``); ``register(warped, image)`` must give back ``truth``.

:func:`registration_scores` then measures how far a result is from the truth.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medlab._options import check_positive

from ._common import check_transform
from ._evaluate import folding_count, jacobian_determinant, target_registration_error
from ._resample import resample_labels

__all__ = ["random_rigid", "random_affine", "random_deformation", "registration_scores"]


def _rng(seed):
    return np.random.default_rng(seed)


def _centre(centre_mm, dimension):
    if centre_mm is None:
        return (0.0,) * dimension
    c = tuple(float(v) for v in centre_mm)
    if len(c) != dimension:
        raise ValueError(f"`centre_mm` must have {dimension} values (x, y[, z], mm); got {centre_mm!r}")
    return c


def _check_dimension(dimension):
    if dimension not in (2, 3) or isinstance(dimension, bool):
        raise ValueError(f"`dimension` must be 2 or 3; got {dimension!r}")
    return dimension


def _rigid_parts(rng, max_angle_deg, max_translation_mm, dimension):
    a = check_positive("max_angle_deg", max_angle_deg, allow_zero=True)
    t = check_positive("max_translation_mm", max_translation_mm, allow_zero=True)
    n_angles = 3 if dimension == 3 else 1
    angles = np.deg2rad(rng.uniform(-a, a, n_angles))
    shift = rng.uniform(-t, t, dimension)
    return angles, shift


def random_rigid(*, max_angle_deg: float = 10.0, max_translation_mm: float = 15.0, centre_mm=None,
                 dimension: int = 3, seed=None) -> sitk.Transform:
    """A random rigid transform: every Euler angle uniform in ``[-max_angle_deg, max_angle_deg]``
    about ``centre_mm``, every translation component uniform in ``[-max_translation_mm,
    max_translation_mm]`` (mm).

    Parameters
    ----------
    max_angle_deg : float
        Largest rotation about each axis, degrees (2D: the one in-plane angle).
    max_translation_mm : float
        Largest translation along each physical axis, mm.
    centre_mm : sequence of float, optional
        Centre of rotation (x, y[, z], mm); default the origin.
    dimension : {2, 3}
        The transform's dimension.
    seed : int or numpy.random.Generator, optional
        Random seed.

    Returns
    -------
    sitk.Euler3DTransform or sitk.Euler2DTransform
        Seeded: the same ``seed`` gives the same transform.
    """
    dimension = _check_dimension(dimension)
    rng = _rng(seed)
    angles, shift = _rigid_parts(rng, max_angle_deg, max_translation_mm, dimension)
    c = _centre(centre_mm, dimension)
    if dimension == 3:
        t = sitk.Euler3DTransform(c, *(float(v) for v in angles), tuple(float(v) for v in shift))
    else:
        t = sitk.Euler2DTransform(c, float(angles[0]), tuple(float(v) for v in shift))
    return t


def random_affine(*, max_angle_deg: float = 10.0, max_translation_mm: float = 15.0,
                  max_scale: float = 0.05, max_shear: float = 0.05, centre_mm=None,
                  dimension: int = 3, seed=None) -> sitk.AffineTransform:
    """A random affine transform ``x -> R K S (x - c) + c + t`` about ``centre_mm``: a random
    rigid part as in :func:`random_rigid`, scales ``1 + U(-max_scale, max_scale)`` per axis
    (``S``) and shears ``U(-max_shear, max_shear)`` above the diagonal (``K``).

    Parameters
    ----------
    max_angle_deg, max_translation_mm, centre_mm, dimension, seed
        As for :func:`random_rigid`.
    max_scale : float
        Largest relative change of scale per axis, in [0, 1) (0.05: 0.95-1.05).
    max_shear : float
        Largest shear term, >= 0.

    Returns
    -------
    sitk.AffineTransform
        Seeded.
    """
    dimension = _check_dimension(dimension)
    rng = _rng(seed)
    angles, shift = _rigid_parts(rng, max_angle_deg, max_translation_mm, dimension)
    s = check_positive("max_scale", max_scale, allow_zero=True)
    h = check_positive("max_shear", max_shear, allow_zero=True)
    if s >= 1:
        raise ValueError(f"`max_scale` must be < 1 (a fraction); got {max_scale!r}")
    c = _centre(centre_mm, dimension)
    if dimension == 3:
        rot = sitk.Euler3DTransform((0, 0, 0), *(float(v) for v in angles))
    else:
        rot = sitk.Euler2DTransform((0, 0), float(angles[0]))
    r = np.asarray(rot.GetMatrix()).reshape(dimension, dimension)
    scale = np.diag(1.0 + rng.uniform(-s, s, dimension))
    shear = np.eye(dimension)
    iu = np.triu_indices(dimension, 1)
    shear[iu] = rng.uniform(-h, h, len(iu[0]))
    out = sitk.AffineTransform(dimension)
    out.SetCenter(c)
    out.SetMatrix(tuple(float(v) for v in (r @ shear @ scale).ravel()))
    out.SetTranslation(tuple(float(v) for v in shift))
    return out


def random_deformation(reference: sitk.Image, *, max_displacement_mm: float = 4.0,
                       smoothness_mm: float = 15.0, seed=None) -> sitk.DisplacementFieldTransform:
    """A random smooth, invertible deformation on ``reference``'s grid.

    White Gaussian noise per displacement component, smoothed by a Gaussian of
    ``smoothness_mm`` (sigma, per axis in voxels from the spacing), scaled so that the largest
    displacement is ``max_displacement_mm``. It is checked to be fold-free (Jacobian
    determinant > 0 everywhere); a rough field (small ``smoothness_mm`` for its amplitude) is
    refused.

    Parameters
    ----------
    reference : sitk.Image
        The grid the field lives on (its spacing sets the smoothing per axis).
    max_displacement_mm : float
        The largest displacement of any voxel, mm.
    smoothness_mm : float
        Gaussian sigma (mm) of the smoothing of the noise; larger is smoother.
    seed : int or numpy.random.Generator, optional
        Random seed.

    Returns
    -------
    sitk.DisplacementFieldTransform
        Fixed -> moving on ``reference``'s grid (linear interpolation in between, zero
        displacement outside). Seeded.
    """
    from scipy import ndimage as ndi  # lazy: scipy.ndimage would double the import time

    if not isinstance(reference, sitk.Image):
        raise TypeError(f"`reference` must be a SimpleITK.Image; got {type(reference).__name__}")
    amp = check_positive("max_displacement_mm", max_displacement_mm)
    smooth = check_positive("smoothness_mm", smoothness_mm)
    dim = reference.GetDimension()
    shape = reference.GetSize()[::-1]
    sigma_vox = [smooth / s for s in reference.GetSpacing()[::-1]]
    rng = _rng(seed)
    comps = [ndi.gaussian_filter(rng.standard_normal(shape), sigma_vox, mode="reflect") for _ in range(dim)]
    disp = np.stack(comps, axis=-1)
    disp *= amp / np.linalg.norm(disp, axis=-1).max()
    field = sitk.GetImageFromArray(disp.astype(np.float64), isVector=True)
    field.CopyInformation(reference)
    t = sitk.DisplacementFieldTransform(sitk.Image(field))  # the transform takes the image over
    jmin = float(np.min(sitk.GetArrayFromImage(jacobian_determinant(t, reference))))
    if jmin <= 0:
        raise ValueError(
            f"the random field folds (min Jacobian determinant {jmin:.3f}); raise `smoothness_mm` "
            f"({smooth}) or lower `max_displacement_mm` ({amp})"
        )
    return t


def registration_scores(transform: sitk.Transform, truth: sitk.Transform, *, target_mask: sitk.Image,
                        fixed_mask: sitk.Image | None = None, moving_mask: sitk.Image | None = None) -> dict:
    """Scores of a registration result against the known truth.

    Parameters
    ----------
    transform : sitk.Transform
        The result (fixed -> moving).
    truth : sitk.Transform
        The true fixed -> moving transform.
    target_mask : sitk.Image
        Fixed-frame label image whose voxels are the TRE targets (e.g. the tumour mask).
    fixed_mask, moving_mask : sitk.Image, optional
        A structure in both frames (e.g. the tumour mask of the fixed image and of the moved
        moving image): the moving one is resampled through ``transform`` (and, for reference,
        through ``truth`` and the identity) onto the fixed one for Dice.

    Returns
    -------
    dict
        ``tre_mean_mm``, ``tre_p95_mm``, ``tre_max_mm`` (over the target voxels),
        ``tre_start_mean_mm`` (the identity's error: how far off the moving image started);
        with masks also ``dice`` (after registration), ``dice_start`` (identity) and
        ``dice_truth`` (through the true transform: the best the mask grids allow);
        for non-linear transforms ``folding`` (voxels of ``target_mask`` with Jacobian
        determinant <= 0) and ``jacobian_min``.
    """
    dim = target_mask.GetDimension()
    check_transform(transform, dim)
    check_transform(truth, dim, "truth")
    tre = target_registration_error(transform, truth, mask=target_mask)
    identity = sitk.Transform(dim, sitk.sitkIdentity)
    start = target_registration_error(identity, truth, mask=target_mask)
    out = {"tre_mean_mm": tre.mean, "tre_p95_mm": tre.p95, "tre_max_mm": tre.max,
           "tre_start_mean_mm": start.mean}
    if (fixed_mask is None) != (moving_mask is None):
        raise ValueError("give both `fixed_mask` and `moving_mask` for Dice, or neither")
    if fixed_mask is not None:
        from medlab.metrics import dice  # lazy: medlab.metrics loads scipy and pandas

        for key, t in (("dice", transform), ("dice_start", identity), ("dice_truth", truth)):
            out[key] = dice(resample_labels(moving_mask, fixed_mask, t), fixed_mask)
    if not transform.IsLinear():
        jac = jacobian_determinant(transform, target_mask)
        inside = sitk.GetArrayViewFromImage(target_mask) != 0
        out["folding"] = folding_count(jac, mask=target_mask)
        out["jacobian_min"] = float(sitk.GetArrayViewFromImage(jac)[inside].min())
    return out

