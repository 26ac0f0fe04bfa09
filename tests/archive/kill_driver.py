"""Driver for the kill -9 test: adds seeded random batches to an archive, resuming from its state.

    python kill_driver.py ARCHIVE BATCHES SEED [behind]

Creates the archive if it does not exist, otherwise resumes from ``archive.state()`` (the RNG state
and the batch counter saved with the last batch). Prints ``ready`` once the archive is open, then
the batch count after each batch, until BATCHES have been added. Everything a batch contains is drawn from the RNG, so an
interrupted-and-resumed run must end with exactly the candidates of an uninterrupted one.
With ``behind`` the batches are written by the archive's writer thread (as a run writes them), so a
kill may also land while some wait to be written; the count printed is then of batches handed over.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from archive_helpers import META, record

from evolve.archive import Archive


def rng_to_json(rng: random.Random) -> list:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def rng_from_json(data: list) -> random.Random:
    rng = random.Random()
    rng.setstate((data[0], tuple(data[1]), data[2]))
    return rng


def batch(rng: random.Random, next_id: int) -> list:
    records = []
    for offset in range(rng.randint(1, 4)):
        existing = next_id + offset  # earlier records of this batch may be parents too
        parents = tuple(rng.sample(range(existing), min(existing, rng.choice([0, 1, 1, 1, 2]))))
        status = rng.choice(["ok"] * 8 + ["error", "crashed"])
        value = rng.random()
        records.append(record(rng.randint(10, 99), round(rng.uniform(10, 90), 2),
                              rng.choice([0.5, 0.95, 1.0]), status=status, parents=parents,
                              mutator=rng.choice(["llm-diff", "rewrite", "numeric"]),
                              source=f"# child of {list(parents)}\nVALUE = {value!r}\n" * 20,
                              description=f"draw {value:.6f}"))
    return records


def main(path: Path, batches: int, seed: int, behind: bool) -> None:
    archive = Archive.open(path) if path.exists() else Archive.create(path, META)
    state = archive.state()
    rng = rng_from_json(state["rng"]) if state else random.Random(seed)
    done, next_id = state.get("batches", 0), len(archive)
    print("ready", flush=True)
    while done < batches:
        records = batch(rng, next_id)
        done += 1
        next_id += len(archive.add_batch(records, {"rng": rng_to_json(rng), "batches": done}, behind=behind))
        print(done, flush=True)
    archive.close()
    print("done", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:] == ["behind"])
