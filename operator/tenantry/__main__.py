"""`python -m tenantry` is the `tenantry` command."""

import sys

from tenantry.cli import main

sys.exit(main())
