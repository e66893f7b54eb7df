"""The exception types medlab raises for bad data (as opposed to bad arguments).

Bad *arguments* (a wrong option string, a mismatched shape) raise ``ValueError`` or
``TypeError`` with a message naming the argument, what was expected and what was received.
Bad *data* (a file that cannot be read, a data set that is missing or corrupted) raises a
:class:`MedlabError` subclass that names the path and the reason.
"""

from __future__ import annotations

import os

__all__ = ["MedlabError", "ImageIOError", "DatasetError", "ChecksumError"]


class MedlabError(Exception):
    """Base class of every error medlab raises about data."""


class ImageIOError(MedlabError):
    """An image or DICOM file could not be read or written.

    Attributes
    ----------
    path : str
        The file or folder concerned.
    reason : str
        What was wrong, in words.
    """

    def __init__(self, path: os.PathLike | str, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class DatasetError(MedlabError):
    """A registered data set is unknown, missing from every store, or unusable."""


class ChecksumError(DatasetError):
    """A data-set file does not match its registered sha256; it is never used."""
