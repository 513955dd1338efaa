"""``python -m flowcraft``: the command line (see [`flowcraft.cli`][flowcraft.cli])."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
