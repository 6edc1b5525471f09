"""``python -m extism_fast.cli``: the ``extism-fast`` command, as ``python -m extism_fast``."""

import sys

from extism_fast.cli import main

sys.exit(main())
