"""Copies standard input to standard output, dropping what matches a regex (argv[1]).

The `mmae` command runs this as a child process between file descriptor 2 and
the real stderr, to drop TensorFlow's harmless C++ start-up lines (see
`mmae.cli._without_tensorflow_noise`). It runs with `python -I -S` by path,
so it imports nothing but the standard library and starts in milliseconds.
"""

import os
import re
import sys


def main():
    noise = re.compile(sys.argv[1].encode())
    out = os.fdopen(1, "wb")
    while chunk := os.read(0, 1 << 16):
        out.write(noise.sub(b"", chunk))
        out.flush()


if __name__ == "__main__":
    main()
