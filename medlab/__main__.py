"""``python -m medlab``: the ``medlab`` command line (:mod:`medlab.cli`)."""

import sys

from medlab.cli import main

sys.exit(main())
