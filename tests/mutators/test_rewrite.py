"""Reading a whole program out of a model's reply, and re-adding the imports it dropped."""

from __future__ import annotations

from evolve.mutators.replies import extract_code, intent, restore_imports

CODE = "import math\n\n\ndef f(x):\n    return math.sqrt(x)\n"


def test_single_python_fence_with_chatter() -> None:
    reply = f"Here is the faster version:\n\n```python\n{CODE}```\n\nThis avoids a loop."
    assert extract_code(reply) == CODE


def test_longest_python_fence_wins_over_snippets_and_other_languages() -> None:
    reply = (
        "First, the key line:\n```python\nreturn math.sqrt(x)\n```\n"
        f"The full program:\n```py\n{CODE}```\n"
        "Run it with:\n```bash\npython program.py --with a very long command line that is longer than the program itself\n```\n"
    )
    assert extract_code(reply) == CODE


def test_a_fence_that_parses_beats_a_longer_broken_one() -> None:
    broken = "def g(:\n" + "    pass\n" * 10
    reply = f"```python\n{broken}```\nsorry, fixed:\n```python\n{CODE}```"
    assert extract_code(reply) == CODE


def test_unlabelled_and_unterminated_fences() -> None:
    assert extract_code(f"```\n{CODE}```") == CODE
    assert extract_code(f"Sure:\n```python\n{CODE}") == CODE  # cut off before the closing fence


def test_unfenced_reply_with_chatter_before_and_after() -> None:
    reply = f"Sure! Below is the program.\n\n{CODE}\nI hope this helps you."
    assert extract_code(reply) == CODE


def test_crlf_and_think_sections() -> None:
    reply = f"<think>```python\nimport os\n```</think>\n```python\n{CODE}```".replace("\n", "\r\n")
    assert extract_code(reply) == CODE


def test_no_code_at_all() -> None:
    assert extract_code("I cannot improve this program any further.") is None


def test_dropped_imports_that_are_used_come_back() -> None:
    parent = '"""Doc."""\nfrom __future__ import annotations\nimport math\nimport numpy as np\nfrom os import path as p, sep\n\nX = 1\n'
    child = '"""Doc."""\nfrom __future__ import annotations\n\ndef f(x):\n    return math.sqrt(x) + np.pi + len(sep)\n'
    fixed, added = restore_imports(parent, child)
    assert added == ["import math", "import numpy as np", "from os import sep"]
    assert fixed.startswith('"""Doc."""\nfrom __future__ import annotations\nimport math\nimport numpy as np\nfrom os import sep\n')


def test_deliberately_removed_or_rebound_imports_stay_out() -> None:
    parent = "import math\nimport numpy\nimport json\n\ndef f(x):\n    return math.sqrt(x)\n"
    child = "from math import sqrt\n\ndef f(x, json=None):\n    return sqrt(x)\n\ndef numpy():\n    return 0\n"
    assert restore_imports(parent, child) == (child, [])


def test_imports_go_inside_the_evolve_block_when_the_child_is_marked() -> None:
    parent = "# EVOLVE-BLOCK-START\nimport math\ny = math.pi\n# EVOLVE-BLOCK-END\n"
    child = "# EVOLVE-BLOCK-START\ny = math.tau\n# EVOLVE-BLOCK-END\n"
    fixed, added = restore_imports(parent, child)
    assert added == ["import math"]
    assert fixed == "# EVOLVE-BLOCK-START\nimport math\ny = math.tau\n# EVOLVE-BLOCK-END\n"


def test_intent_is_the_first_prose_line() -> None:
    assert intent("**Use a cached square root** to save time.\n```python\nx = 1\n```") == "Use a cached square root to save time."
    assert intent("```python\nx = 1\n```") == ""
    assert intent("\n\nx = 1\n") == ""
