"""``python -m cutout_dev.flood``."""

import sys

from cutout_dev.flood.run import main

sys.exit(main())
