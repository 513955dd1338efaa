"""``python -m flowcraft.cli``: the same as ``python -m flowcraft``."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
