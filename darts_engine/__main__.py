"""`python -m darts_engine ...`: see cli.py."""

import sys

from .cli import main

sys.exit(main())
