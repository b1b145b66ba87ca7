import sys

from mmae.cli import main

sys.exit(main())
