"""Seed for the toy task: print a vector; evolution moves it toward the task's target."""

import json

# EVOLVE-BLOCK-START
values = [2.0, -1.0, 0.5, 5.0]
# EVOLVE-BLOCK-END

print(json.dumps(values))
