"""Deprecated alias of :mod:`medlab.apps.neuro` (the use cases live in :mod:`medlab.apps`).

Kept so that ``from medlab import neuro`` in existing notebooks goes on working; it is the same
module object (``medlab.neuro is medlab.apps.neuro``), so nothing is duplicated. New code:
``from medlab.apps import neuro``.
"""

import sys

from medlab.apps import neuro as _module

sys.modules[__name__] = _module
