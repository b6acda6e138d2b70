import sys

from retrainer.cli.main import main

sys.exit(main())
