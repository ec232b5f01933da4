import sys

from amsgd.cli import main

sys.exit(main())
