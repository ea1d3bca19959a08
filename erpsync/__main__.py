"""`python -m erpsync` is the `erpsync` command."""

import sys

from erpsync.cli import main

sys.exit(main())
