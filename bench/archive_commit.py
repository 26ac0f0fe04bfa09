"""Archive write speed: ms per candidate for add_batch, and in-process vs subprocess object writes.

Side by side in one run:
- ``add_batch`` at batch sizes 1, 8 and 32 (candidate commit + checkpoint + front + one ref
  transaction + index update): median ms per candidate over the batches;
- writing one candidate's objects (2 blobs, tree, commit) in-process through gitdb's loose-object
  database (what the archive does) vs ``git hash-object -w`` per object (GitPython's default
  ``GitCmdObjectDB.store``): median ms per candidate and the ratio;
- rebuilding the index from git (``reindex``): ms per candidate.

    python bench/archive_commit.py [--candidates 400]
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import tempfile
import time
from pathlib import Path

import git
from gitdb import IStream

from evolve.archive import Archive, RunMeta
from evolve.archive.store import GitStore
from evolve.candidate import Candidate
from evolve.evaluation import EvalResult
from evolve.tasks import Constraint, Objective
from evolve.usage import Usage

META = RunMeta(run="bench", task="adder",
               objectives=(Objective("params_unique", "min"), Objective("peak_rss_mib", "min")),
               constraints=(Constraint("accuracy", ">=", 0.99),))


def make_record(rng: random.Random, n_existing: int) -> Candidate:
    lines = [f"W{i} = {rng.random()!r}  # weight {i}" for i in range(60)]  # ~3 KB, like a seed
    accuracy = rng.choice([0.5, 1.0])
    metrics = {"params_unique": rng.randint(40, 400), "peak_rss_mib": rng.uniform(15, 60),
               "accuracy": accuracy}
    result = EvalResult(status="ok", metrics=metrics, feasible=accuracy >= 0.99,
                        violation=max(0.0, 0.99 - accuracy), wall_s=rng.uniform(1, 5))
    parents = (rng.randrange(n_existing),) if n_existing else ()
    return Candidate(source="\n".join(lines) + "\n", result=result, parents=parents,
                           mutator="llm-diff", description="tie the output head to the embedding",
                           usage=Usage(900, 150, 0.0, "qwen2.5-coder-1.5b"))


def add_batch_ms(root: Path, candidates: int, batch: int) -> tuple[float, float]:
    """Median ms per candidate of add_batch, and reindex ms per candidate."""
    rng = random.Random(batch)
    per_candidate = []
    with Archive.create(root / f"batch{batch}" / "archive", META) as archive:
        while len(archive) < candidates:
            records = [make_record(rng, len(archive) + i) for i in range(batch)]
            start = time.perf_counter()
            archive.add_batch(records, {"rng": rng.random()})
            per_candidate.append((time.perf_counter() - start) * 1000 / batch)
        start = time.perf_counter()
        archive.reindex()
        reindex = (time.perf_counter() - start) * 1000 / len(archive)
    return statistics.median(per_candidate), reindex


def object_write_ms(root: Path, candidates: int) -> tuple[float, float]:
    """Median ms to write one candidate's 4 objects: in-process (gitdb) vs git hash-object."""
    store = GitStore.init(root / "objects")
    subprocess_db = git.Repo(store.path).odb  # GitCmdObjectDB: `git hash-object -w` per object
    rng = random.Random(0)
    in_process, via_git = [], []
    for _ in range(candidates):
        record = make_record(rng, 0)
        source, metrics = record.source.encode(), repr(record.result).encode()
        start = time.perf_counter()
        tree = store.tree({"program.py": store.blob(source), "metrics.json": store.blob(metrics)})
        store.commit(tree, [], "message\n", time.time())
        in_process.append((time.perf_counter() - start) * 1000)
        source += b"#"  # new content, so neither path finds the objects already stored
        start = time.perf_counter()
        for kind, data in ((b"blob", source), (b"blob", metrics + b" "), (b"tree", b""),
                           (b"commit", b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nm\n")):
            subprocess_db.store(IStream(kind, len(data), io.BytesIO(data)))
        via_git.append((time.perf_counter() - start) * 1000)
    store.close()
    return statistics.median(in_process), statistics.median(via_git)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for batch in (1, 8, 32):
            ms, reindex = add_batch_ms(root, args.candidates, batch)
            print(f"add_batch, batch of {batch:2d}: {ms:6.2f} ms per candidate (median); "
                  f"reindex {reindex:.2f} ms per candidate")
        fast, slow = object_write_ms(root, min(args.candidates, 200))
        print(f"objects of one candidate: in-process {fast:.2f} ms, git hash-object {slow:.2f} ms "
              f"(median), ratio {slow / fast:.1f}x")


if __name__ == "__main__":
    main()
