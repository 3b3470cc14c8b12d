import sys

from spinlock_cli.main import main

sys.exit(main())
