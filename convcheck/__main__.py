"""``python -m convcheck`` is the ``convcheck`` command."""

import sys

from .cli import main

sys.exit(main())
