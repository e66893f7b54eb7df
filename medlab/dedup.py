"""Perceptual hashes and near-duplicate groups, so that data splits do not leak.

A public data set often holds the same image more than once: resized, re-encoded, cropped a
little, or with a slightly different gain (BUSI has about 19 % such near-duplicates). A model
evaluated on a copy of a training image looks better than it is, so images are grouped first
and whole groups are split (:func:`medlab.models.grouped_split`).

Hashes (64 bits for the default ``hash_size=8``), computed on the grey image:

dHash
    The image is shrunk to ``hash_size x (hash_size + 1)`` pixels (area averaging); bit = 1 where
    a pixel is brighter than its right neighbour. Robust to resizing, gain and noise; fast.
pHash
    The image is shrunk to ``4 hash_size`` squared pixels, transformed with a 2D DCT-II; bit = 1
    where a coefficient of the lowest ``hash_size x hash_size`` frequencies is above their median
    (the DC term takes no part in the median). Also robust to mild blur and JPEG.

Two images are near-duplicates when their Hamming distance (differing bits) is at most
``max_distance``; groups are the connected components of that relation (if A ~ B and B ~ C,
all three are one group). Unrelated images differ in about half the bits (32 of 64).
This is the same definition as the ``imagehash`` package's ``dhash`` and ``phash`` up to the
median detail, written here with numpy, SciPy and OpenCV to avoid a dependency.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import SimpleITK as sitk
from scipy.fft import dctn

from medlab._options import check_choice, check_int

__all__ = ["image_hash", "hash_distances", "near_duplicate_groups", "linked_groups", "METHODS"]

METHODS = ("dhash", "phash")


def _grey(image) -> np.ndarray:
    if isinstance(image, sitk.Image):
        arr = sitk.GetArrayFromImage(image)
        if image.GetNumberOfComponentsPerPixel() == 1:
            arr = arr[..., None]
    else:
        arr = np.asarray(image)
        if arr.ndim == 2:
            arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise ValueError(f"`image` must be a 2D grey or RGB(A) image; got shape {np.shape(image)}")
    return arr[..., :3].astype(np.float32).mean(axis=-1)


def _shrink(grey: np.ndarray, rows: int, cols: int) -> np.ndarray:
    return cv2.resize(grey, (cols, rows), interpolation=cv2.INTER_AREA)


def image_hash(image, method: str = "phash", *, hash_size: int = 8) -> np.ndarray:
    """Perceptual hash of a 2D image as a bool array of ``hash_size ** 2`` bits.

    Parameters
    ----------
    image : sitk.Image or ndarray
        2D grey or RGB image (RGB is averaged to grey).
    method : {'phash', 'dhash'}
        See the module docstring.
    hash_size : int
        Bits per side (>= 2); 8 gives 64 bits.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import ndimage
    >>> from medlab.dedup import image_hash
    >>> image = ndimage.gaussian_filter(np.random.default_rng(0).random((128, 128)), 4)
    >>> int((image_hash(image) != image_hash(image[::2, ::2])).sum())  # bits changed by resizing
    0
    """
    check_choice("method", method, METHODS)
    check_int("hash_size", hash_size, minimum=2)
    grey = _grey(image)
    if method == "dhash":
        small = _shrink(grey, hash_size, hash_size + 1)
        return (small[:, 1:] < small[:, :-1]).ravel()
    small = _shrink(grey, 4 * hash_size, 4 * hash_size).astype(np.float64)
    low = dctn(small, type=2, norm="ortho")[:hash_size, :hash_size].ravel()
    return low > np.median(low[1:])


def _pack(bits: np.ndarray) -> np.ndarray:
    """``(n, b)`` bool -> ``(n, ceil(b / 8))`` uint8 for fast XOR and popcount."""
    return np.packbits(np.asarray(bits, bool), axis=1)


def hash_distances(hashes) -> np.ndarray:
    """Pairwise Hamming distances ``(n, n)`` (int) between hashes ``(n, bits)``."""
    packed = _pack(np.atleast_2d(hashes))
    n = len(packed)
    out = np.empty((n, n), np.int32)
    step = max(1, 2_000_000 // max(n, 1))
    for i in range(0, n, step):
        x = packed[i:i + step, None, :] ^ packed[None, :, :]
        out[i:i + step] = np.bitwise_count(x).sum(axis=-1)
    return out


def near_duplicate_groups(images: Sequence, *, method: str = "phash", max_distance: int = 10,
                          hash_size: int = 8, hashes=None) -> np.ndarray:
    """Group near-duplicate images.

    Parameters
    ----------
    images : sequence of sitk.Image or ndarray
        2D grey or RGB images (may be None when ``hashes`` is given).
    method : {'phash', 'dhash'}
        Hash (module docstring).
    max_distance : int
        Largest Hamming distance (of ``hash_size ** 2`` bits) between near-duplicates. With 64-bit
        pHashes, resized, re-encoded and noisy copies stay within about 6; unrelated images are
        about 32 apart.
    hash_size : int
        Bits per side of the hash.
    hashes : ndarray, (n, bits), optional
        Precomputed hashes (:func:`image_hash`), to try several thresholds cheaply.

    Returns
    -------
    ndarray of int, (n,)
        Group id of each image: ``0 .. n_groups - 1``, numbered in order of first appearance;
        images alone in their group get an id of their own.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import ndimage
    >>> from medlab.dedup import near_duplicate_groups
    >>> rng = np.random.default_rng(0)
    >>> a, b = (ndimage.gaussian_filter(rng.random((128, 128)), 4) for _ in range(2))
    >>> near_duplicate_groups([a, b, a[::2, ::2]]).tolist()
    [0, 1, 0]
    """
    check_int("max_distance", max_distance, minimum=0)
    if hashes is None:
        hashes = np.array([image_hash(im, method, hash_size=hash_size) for im in images])
    hashes = np.atleast_2d(np.asarray(hashes, bool))
    n = len(hashes)
    if n == 0:
        return np.zeros(0, int)
    close = hash_distances(hashes) <= max_distance
    return linked_groups(n, np.argwhere(np.triu(close, 1)))


def linked_groups(n: int, pairs) -> np.ndarray:
    """Group ids of ``n`` items linked by ``pairs`` (``(i, j)`` rows), transitively: the
    connected components, numbered 0.. in order of first appearance.

    >>> linked_groups(5, [(3, 1), (4, 3)]).tolist()
    [0, 1, 2, 1, 1]
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    pairs = np.asarray(pairs, dtype=int).reshape(-1, 2)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    _, first = np.unique(comp, return_index=True)
    order = np.empty(len(first), dtype=int)
    order[np.argsort(first)] = np.arange(len(first))
    return order[comp]
