"""``python -m cutalign COMMAND ...``: the ``cutalign`` command, also for ``accelerate launch -m cutalign train``."""

import sys

from .cli import main

sys.exit(main())
