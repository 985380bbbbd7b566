"""`python -m localcluster tools|up|down|env`: see `localcluster.cli`."""

import sys

from localcluster.cli import main

sys.exit(main())
