"""`python -m dolmen.cli`: the `dolmen` command, without the installed script."""

import sys

from dolmen.cli.entry import main

if __name__ == "__main__":
    sys.exit(main())
