"""``python -m local_aws``: run the local AWS endpoint."""

import sys

from local_aws.cli import main

sys.exit(main())
