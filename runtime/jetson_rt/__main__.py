from __future__ import annotations

import sys

from jetson_rt.cli import main

sys.exit(main())
