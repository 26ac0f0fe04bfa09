"""SEARCH/REPLACE parsing and application: the replies small models actually produce."""

from __future__ import annotations

import pytest

from evolve.mutators.base import EditError
from evolve.mutators.diff import DiffBlock, apply_diff, parse_diff

PROGRAM = '''\
import math


def area(r):
    return math.pi * r * r


def perimeter(r):
    return 2 * math.pi * r
'''

MARKED = '''\
import math

SCALE = 2.0

# EVOLVE-BLOCK-START
def area(r):
    return math.pi * r * r
# EVOLVE-BLOCK-END


def report(r):
    return area(r) * SCALE
'''


def block(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def apply(source: str, reply: str) -> str:
    return apply_diff(source, parse_diff(reply)).source


def test_single_block_exact_match() -> None:
    out = apply(PROGRAM, block("    return math.pi * r * r\n", "    return math.pi * r ** 2\n"))
    assert "math.pi * r ** 2" in out and "2 * math.pi * r" in out


def test_several_blocks_apply_in_order() -> None:
    reply = block("def area(r):\n", "def area(r: float) -> float:\n") + "\nand also\n" + block(
        "    return 2 * math.pi * r\n", "    return math.tau * r\n")
    result = apply_diff(PROGRAM, parse_diff(reply))
    assert result.blocks == 2 and result.fuzzy == 0
    assert "def area(r: float) -> float:" in result.source and "math.tau * r" in result.source
    assert (result.added, result.removed, result.first_line) == (2, 2, 4)


def test_code_fences_and_chatter_around_and_inside_blocks() -> None:
    reply = (
        "Sure! I will use exponentiation because it is clearer.\n\n```python\n"
        "<<<<<<< SEARCH\n```python\n    return math.pi * r * r\n```\n=======\n    return math.pi * r ** 2\n>>>>>>> REPLACE\n"
        "```\nLet me know if you need anything else!"
    )
    assert "math.pi * r ** 2" in apply(PROGRAM, reply)


def test_crlf_reply_and_crlf_program() -> None:
    reply = block("    return math.pi * r * r\n", "    return math.pi * r ** 2\n").replace("\n", "\r\n")
    out = apply(PROGRAM, reply)
    assert "r ** 2" in out
    crlf_program = PROGRAM.replace("\n", "\r\n")
    out = apply(crlf_program, reply)
    assert "r ** 2" in out and out.count("\r\n") == out.count("\n")


def test_whitespace_tolerant_match_reindents_the_replacement() -> None:
    """The model dropped the indentation and added trailing spaces: match ignoring both."""
    reply = block("def area(r):   \n    return math.pi * r * r\n", "def area(r):\n    half = r / 2\n    return 4 * math.pi * half * half\n")
    indented = PROGRAM.replace("def area(r):\n    return math.pi * r * r\n", "class C:\n    def area(r):\n        return math.pi * r * r\n")
    result = apply_diff(indented, parse_diff(reply))
    assert result.fuzzy == 1
    assert "    def area(r):\n        half = r / 2\n        return 4 * math.pi * half * half\n" in result.source


def test_search_that_matches_nothing_names_the_block() -> None:
    reply = block("def area(r):\n", "def area(r: float):\n") + block("def volume(r):\n", "def volume(r: float):\n")
    with pytest.raises(EditError, match=r"diff block 2: SEARCH text \('def volume\(r\):'...\) matches nothing anywhere"):
        apply(PROGRAM, reply)


def test_ambiguous_search_is_rejected() -> None:
    with pytest.raises(EditError, match="diff block 1: SEARCH text matches 2 places; it must match exactly one"):
        apply("x = 0\ny = 1\nx = 0\n", block("x = 0\n", "x = 2\n"))
    doubled = PROGRAM + "\n\ndef again(r):\n    return math.pi * r * r\n"
    with pytest.raises(EditError, match="matches 2 places"):
        apply(doubled, block("return math.pi * r * r\n", "return 0\n"))


def test_search_must_start_at_a_line_start() -> None:
    """``r * r`` occurs mid-line only; a partial-line match would be a surprise edit."""
    with pytest.raises(EditError, match="matches nothing"):
        apply(PROGRAM, block("r * r\n", "r ** 2\n"))


def test_empty_reply_empty_search_and_no_op_are_rejected() -> None:
    with pytest.raises(EditError, match="no SEARCH/REPLACE blocks found"):
        apply(PROGRAM, "I think the program is already optimal.")
    with pytest.raises(EditError, match="diff block 1: empty SEARCH text"):
        apply(PROGRAM, block("\n", "x = 1\n"))
    with pytest.raises(EditError, match="diff changes nothing"):
        apply(PROGRAM, block("def area(r):\n", "def area(r):\n"))


@pytest.mark.parametrize("reply, message", [
    ("<<<<<<< SEARCH\ndef area(r):\n>>>>>>> REPLACE\n", "diff block 1: missing '======='"),
    ("<<<<<<< SEARCH\ndef area(r):\n=======\ndef area(q):\n", "diff block 1: missing '>>>>>>> REPLACE' \\(reply cut short\\?\\)"),
    (block("def area(r):\n", "x\n") + "<<<<<<< SEARCH\na\n=======\nb\n<<<<<<< SEARCH\n", "diff block 2: missing '>>>>>>> REPLACE' before"),
])
def test_malformed_blocks(reply: str, message: str) -> None:
    with pytest.raises(EditError, match=message):
        parse_diff(reply)


def test_result_must_parse() -> None:
    with pytest.raises(EditError, match=r"result does not parse: line 5"):
        apply(PROGRAM, block("    return math.pi * r * r\n", "    return math.pi * (r * r\n"))


def test_block_outside_the_evolve_block_is_rejected() -> None:
    with pytest.raises(EditError, match="diff block 1: SEARCH text lies outside the EVOLVE-BLOCK regions"):
        apply(MARKED, block("SCALE = 2.0\n", "SCALE = 3.0\n"))
    with pytest.raises(EditError, match="matches nothing outside the EVOLVE-BLOCK regions"):
        apply(MARKED, block("  SCALE = 2.0  \n", "SCALE = 3.0\n"))


def test_search_inside_wins_over_an_identical_line_outside() -> None:
    program = MARKED + "\n\ndef copy(r):\n    return math.pi * r * r\n"
    out = apply(program, block("    return math.pi * r * r\n", "    return math.pi * r ** 2\n"))
    assert out.count("math.pi * r ** 2") == 1 and out.endswith("    return math.pi * r * r\n")


def test_search_spanning_a_marker_is_rejected() -> None:
    with pytest.raises(EditError, match="outside the EVOLVE-BLOCK"):
        apply(MARKED, block("    return math.pi * r * r\n# EVOLVE-BLOCK-END\n", "    return 1.0\n# EVOLVE-BLOCK-END\n"))


def test_markers_in_replace_text_are_rejected() -> None:
    reply = block("    return math.pi * r * r\n", "    return 1.0\n# EVOLVE-BLOCK-END\nSCALE = 9\n# EVOLVE-BLOCK-START\n")
    with pytest.raises(EditError, match="changes code outside the EVOLVE-BLOCK|number of EVOLVE-BLOCK"):
        apply(MARKED, reply)
    nested = block("    return math.pi * r * r\n", "# EVOLVE-BLOCK-START\n    return 1.0\n")
    with pytest.raises(EditError, match="diff block 1: REPLACE text breaks the EVOLVE-BLOCK markers \\(nested"):
        apply(MARKED, nested)


def test_parent_with_a_marker_missing_on_one_side() -> None:
    broken = MARKED.replace("# EVOLVE-BLOCK-END\n", "")
    with pytest.raises(EditError, match=r"parent program: EVOLVE-BLOCK-START at line 5 has no matching EVOLVE-BLOCK-END"):
        apply(broken, block("def area(r):\n", "def area(q):\n"))
    orphan_end = MARKED.replace("# EVOLVE-BLOCK-START\n", "")
    with pytest.raises(EditError, match="EVOLVE-BLOCK-END at line 7 has no matching EVOLVE-BLOCK-START"):
        apply(orphan_end, block("def area(r):\n", "def area(q):\n"))


def test_unicode_text_and_think_sections() -> None:
    program = 'GREETING = "héllo → wörld"  # ünïcode\n\n\ndef f():\n    return GREETING\n'
    reply = "<think>maybe change the arrow\n<<<<<<< SEARCH\nnope\n=======\nno\n>>>>>>> REPLACE\n</think>\n" + block(
        'GREETING = "héllo → wörld"  # ünïcode\n', 'GREETING = "héllo ⇒ wörld"  # ünïcode\n')
    blocks = parse_diff(reply)
    assert blocks == [DiffBlock(1, 'GREETING = "héllo → wörld"  # ünïcode\n', 'GREETING = "héllo ⇒ wörld"  # ünïcode\n')]
    assert "⇒" in apply_diff(program, blocks).source


def test_deleting_lines_with_an_empty_replace() -> None:
    out = apply(PROGRAM, block("\n\ndef perimeter(r):\n    return 2 * math.pi * r\n", ""))
    assert "perimeter" not in out and out.endswith("r * r\n")


def test_program_without_trailing_newline() -> None:
    program = PROGRAM.rstrip("\n")
    out = apply(program, block("    return 2 * math.pi * r\n", "    return math.tau * r\n"))
    assert out.rstrip().endswith("return math.tau * r")


def test_comment_only_diff_is_a_no_op() -> None:
    with pytest.raises(EditError, match="diff changes nothing but formatting and comments"):
        apply(PROGRAM, block("def area(r):\n", "def area(r):  # the area\n"))
