"""Deprecated alias of :mod:`medlab.apps.vessels` (the use cases live in :mod:`medlab.apps`).

Kept so that ``from medlab import vessels`` in existing notebooks goes on working; it is the same
module object (``medlab.vessels is medlab.apps.vessels``), so nothing is duplicated. New code:
``from medlab.apps import vessels``.
"""

import sys

from medlab.apps import vessels as _module

sys.modules[__name__] = _module
