"""EVOLVE-BLOCK regions: layout, the outside-unchanged check, and splicing rewrites."""

from __future__ import annotations

import pytest

from evolve.mutators.base import EditError
from evolve.mutators.blocks import check_outside_unchanged, layout, splice_rewrite

TWO_BLOCKS = '''\
import torch

class Net:
    # EVOLVE-BLOCK-START  (the layer sizes)
    width = 4
    # EVOLVE-BLOCK-END

SEED = 1

# EVOLVE-BLOCK-START
def build():
    return Net()
# EVOLVE-BLOCK-END
'''


def test_layout_round_trips_and_finds_the_regions() -> None:
    lay = layout(TWO_BLOCKS)
    assert lay.marked and lay.join() == TWO_BLOCKS
    assert lay.regions == ("    width = 4\n", "def build():\n    return Net()\n")
    for (start, end), region in zip(lay.spans, lay.regions):
        assert TWO_BLOCKS[start:end] == region


def test_no_markers_means_the_whole_program() -> None:
    lay = layout("x = 1\n")
    assert not lay.marked and lay.regions == ("x = 1\n",) and lay.spans == ((0, 6),)
    check_outside_unchanged("x = 1\n", "y = 2\n")


@pytest.mark.parametrize("source, message", [
    ("# EVOLVE-BLOCK-START\nx = 1\n", "EVOLVE-BLOCK-START at line 1 has no matching EVOLVE-BLOCK-END"),
    ("x = 1\n# EVOLVE-BLOCK-END\n", "EVOLVE-BLOCK-END at line 2 has no matching EVOLVE-BLOCK-START"),
    ("# EVOLVE-BLOCK-START\n# EVOLVE-BLOCK-START\n# EVOLVE-BLOCK-END\n", "nested EVOLVE-BLOCK-START at line 2"),
])
def test_broken_markers(source: str, message: str) -> None:
    with pytest.raises(EditError, match=message):
        layout(source)


def test_outside_changes_are_detected() -> None:
    check_outside_unchanged(TWO_BLOCKS, TWO_BLOCKS.replace("width = 4", "width = 3"))
    with pytest.raises(EditError, match=r"outside the EVOLVE-BLOCK regions \(line 8\)"):
        check_outside_unchanged(TWO_BLOCKS, TWO_BLOCKS.replace("SEED = 1", "SEED = 2"))
    with pytest.raises(EditError, match="number of EVOLVE-BLOCK regions \\(2 -> 0\\)"):
        check_outside_unchanged(TWO_BLOCKS, "x = 1\n")
    with pytest.raises(EditError, match="breaks the EVOLVE-BLOCK markers"):
        check_outside_unchanged(TWO_BLOCKS, TWO_BLOCKS.replace("# EVOLVE-BLOCK-END\n\nSEED", "\nSEED"))


def test_splice_keeps_the_parents_outside_text() -> None:
    child = TWO_BLOCKS.replace("SEED = 1", "SEED = 99").replace("width = 4", "width = 2")
    source, note = splice_rewrite(TWO_BLOCKS, child)
    assert "SEED = 1" in source and "width = 2" in source
    assert note == "changes outside EVOLVE-BLOCK discarded"
    assert splice_rewrite(TWO_BLOCKS, TWO_BLOCKS.replace("width = 4", "width = 5"))[1] == ""


def test_splice_rejects_a_different_number_of_regions() -> None:
    one = "# EVOLVE-BLOCK-START\nx = 1\n# EVOLVE-BLOCK-END\n"
    with pytest.raises(EditError, match="rewrite has 1 EVOLVE-BLOCK regions, the parent has 2"):
        splice_rewrite(TWO_BLOCKS, one)
    with pytest.raises(EditError, match="dropped the EVOLVE-BLOCK markers of a program with 2 regions"):
        splice_rewrite(TWO_BLOCKS, "x = 1\n")


def test_splice_reads_a_markerless_rewrite_as_the_single_region() -> None:
    parent = "import math\n\n# EVOLVE-BLOCK-START\ndef f(x):\n    return x\n# EVOLVE-BLOCK-END\n\nprint(f(2))\n"
    whole = "import math  \n\ndef f(x):\n    return 2 * x\n\nprint(f(2))\n"  # echoed the outside, dropped markers
    source, note = splice_rewrite(parent, whole)
    assert source == "import math\n\n# EVOLVE-BLOCK-START\ndef f(x):\n    return 2 * x\n# EVOLVE-BLOCK-END\n\nprint(f(2))\n"
    assert "without markers" in note
    only_region, _ = splice_rewrite(parent, "def f(x):\n    return 3 * x")
    assert "# EVOLVE-BLOCK-START\ndef f(x):\n    return 3 * x\n# EVOLVE-BLOCK-END\n" in only_region


def test_unmarked_parent_takes_the_rewrite_as_is() -> None:
    assert splice_rewrite("x = 1\n", "y = 2\n") == ("y = 2\n", "")
