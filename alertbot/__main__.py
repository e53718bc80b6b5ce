"""`python -m alertbot`."""

import sys

from alertbot.cli import main

sys.exit(main())
