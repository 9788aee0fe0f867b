"""`python -m physrep.cli`, as the module `physrep/cli.py` allowed before it became a package."""

import sys

from physrep.cli import main

sys.exit(main())
