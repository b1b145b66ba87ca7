"""`python -m mmae.evaluation --run RUN --data PREPARED`: the same as `mmae evaluate`."""

import sys

from mmae.cli import main

sys.exit(main(["evaluate", *sys.argv[1:]]))
