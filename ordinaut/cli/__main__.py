import sys

from ordinaut.cli import main

sys.exit(main())
