"""`python -m mmae.evaluation --run RUN --data PREPARED`: the same as `mmae evaluate`."""

import sys

from mmae.evaluation.evaluate import main

sys.exit(main())
