"""``python -m extism_fast.cli``: the ``extism-fast`` command, as ``python -m extism_fast``."""

import sys

from extism_fast.cli import main

if __name__ == "__main__":
    sys.exit(main())
