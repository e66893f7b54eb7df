"""Deprecated alias of :mod:`medlab.apps.cardiac` (the use cases live in :mod:`medlab.apps`).

Kept so that ``from medlab import cardiac`` in existing notebooks goes on working; it is the same
module object (``medlab.cardiac is medlab.apps.cardiac``), so nothing is duplicated. New code:
``from medlab.apps import cardiac``.
"""

import sys

from medlab.apps import cardiac as _module

sys.modules[__name__] = _module
