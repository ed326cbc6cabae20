"""``python -m cutout_dev.soak``."""

import sys

from cutout_dev.soak.run import main

sys.exit(main())
