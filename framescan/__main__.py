import sys

from framescan.cli.main import main

sys.exit(main())
