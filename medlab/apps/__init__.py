"""Use cases: one clinical task per module, built from the rest of medlab (as MONAI's
``monai.apps``). Each loads on first use.

=================================== ==========================================================
:mod:`medlab.apps.cardiac`          echo cines: grey levels under a color Doppler box, the
                                    cavity through the cine from one seed, ED/ES and FAC
:mod:`medlab.apps.vessels`          vesselness, lumen, centreline, diameter profile, stenosis
:mod:`medlab.apps.neuro`            brain extraction, tissue classes and volumes, simulated
                                    atrophy, haemorrhage candidates on head CT
:mod:`medlab.apps.breast`           breast ultrasound: the lesion region (no drawn mask) and
                                    its BI-RADS-like descriptors
:mod:`medlab.apps.chest`            chest radiographs: the two lung fields
=================================== ==========================================================

Apps may import any ``medlab`` module; no ``medlab`` module below imports an app.
"""

from __future__ import annotations

from medlab._lazy import attach

_APPS = ("cardiac", "neuro", "vessels", "breast", "chest")

__all__ = list(_APPS)

__getattr__, __dir__ = attach(__name__, submodules=_APPS, listing=__all__)
