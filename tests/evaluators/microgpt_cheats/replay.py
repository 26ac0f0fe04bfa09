"""Cheat: print a memorised output of the public run instead of training.

The test puts the public reference output in OUTPUT; the hidden run (another seed, other names)
must expose it.
"""

import sys

OUTPUT = ""

sys.stdout.write(OUTPUT)
