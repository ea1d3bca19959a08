"""``python -m erpsync_dev.sandboxes.netsuite``: serve the NetSuite sandbox until stopped."""

import sys

from erpsync_dev.sandboxes.netsuite.cli import main

sys.exit(main())
