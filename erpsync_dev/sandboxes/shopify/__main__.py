"""``python -m erpsync_dev.sandboxes.shopify``: serve the shop sandbox, or send its webhooks once."""

import sys

from erpsync_dev.sandboxes.shopify.cli import main

sys.exit(main())
