"""``python -m convcheck`` is the ``convcheck`` command."""

import sys

from .cli import main

if __name__ == "__main__":  # spawned sandbox workers import this module as __mp_main__
    sys.exit(main())
