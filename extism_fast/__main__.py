"""``python -m extism_fast``: the ``extism-fast`` command line (see :mod:`extism_fast.cli`)."""

import sys

from extism_fast.cli import main

if __name__ == "__main__":
    sys.exit(main())
