"""``python -m bench``: run bench/compare.py."""

import sys

from bench.compare import main

sys.exit(main())
