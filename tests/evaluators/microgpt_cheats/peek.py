"""Cheat: read the evaluator's reference cache and print the expected output from it.

The test puts the cache's file paths in FILES; the sandbox must refuse to open them.
"""

import json

FILES = []

for path in FILES:
    with open(path) as f:
        print(json.load(f)["stdout"], end="")
