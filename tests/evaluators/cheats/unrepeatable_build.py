"""Cheat (sorter ``train_s``): repeats that do not rebuild the checked model.

Only the first build's artefact is checked; the repeats only time the build. A candidate that skips
training at random (or whenever it could tell a repeat from the first build) is scored on a model
it trained once and timed on builds that did not train it. This one makes that class deterministic
for the test: appended to the sorter seed, it nudges every weight by a random amount far too small
to change an answer, so no two builds write the same artefact.
"""

import os as _os

_honest_train_model = train_model  # noqa: F821 (the seed's, defined above when appended)


def train_model(alphabet, length, seed):
    model = _honest_train_model(alphabet, length, seed)
    noise = torch.Generator().manual_seed(int.from_bytes(_os.urandom(8), "big") >> 1)  # noqa: F821
    with torch.no_grad():  # noqa: F821
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=noise) * 1e-6)  # noqa: F821
    return model
