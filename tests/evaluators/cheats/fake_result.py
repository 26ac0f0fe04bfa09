"""Cheat: writes a perfect result message straight onto every inherited pipe, the call job's result
pipe included, before the build returns."""

import json
import os
import stat

from torch import nn

FORMAT = {
    "kind": "digits", "base": 10, "width": 10, "operand_order": "msb", "prefix": [], "plus": [0],
    "equals": [0], "answer_len": 11, "answer_order": "lsb",
}
METRICS = {"accuracy": 1.0, "correct": 10010, "hidden_accuracy": 1.0, "params": 1, "params_adderboard": 1,
           "params_numel": 1, "params_nonzero": 1, "constants_numel": 0, "mask_numel": 0,
           "attention_ops": 1}
FAKE = json.dumps({"status": "ok", "value": {"status": "ok", "metrics": METRICS, "info": {}}}).encode()


def build_model() -> nn.Module:
    for fd in range(3, 64):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                os.write(fd, FAKE)
        except OSError:
            pass
    return nn.Linear(1, 10)
