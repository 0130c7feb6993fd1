"""%%track runs the cell through IPython's own machinery: every edge case behaves as
the same cell without the %%track line, in a real kernel."""

from __future__ import annotations

import json
import re
import time

import pytest


def last_run(kernel) -> dict:
    res = kernel.run(
        "import nbops as _nb, json as _js\n"
        "_rid = _nb.run_page(limit=1)['runs'][0]['run_id']\n"
        "print(_js.dumps(_nb.get_run(_rid), default=str))"
    )
    assert res["status"] == "ok", res
    return json.loads(res["text"].strip().splitlines()[-1])


def _clean(text: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # colours
    text = re.sub(r"In\s*\[\d+\]", "In[N]", text)
    text = re.sub(r"[\w/.-]*ipykernel_\d+/\d+\.py", "CELL", text)
    return re.sub(r"\(\d+\.py, line", "(CELL, line", text)


def outcome(res: dict) -> dict:
    """What a reader sees of a cell: status, Out value, printed text, the error."""
    error = res["error"] or {}
    return {
        "status": res["status"],
        "out": [
            d.get("text/plain")
            for k, d in [(k, c["data"]) for k, c in res["outputs"] if k == "execute_result"]
        ],
        "text": res["text"],
        "error": (error.get("ename"), _clean(error.get("evalue", ""))),
        "traceback": [_clean(line) for line in error.get("traceback", [])],
    }


def settled(kernel, code: str) -> dict:
    """Run ``code``; after an error, wait until ipykernel stops aborting requests."""
    res = kernel.run(code)
    if res["status"] != "ok":
        for _ in range(50):
            if kernel.run("pass")["status"] == "ok":
                break
            time.sleep(0.05)
    return res


def plain_and_tracked(kernel, body: str, setup: str = "") -> tuple[dict, dict]:
    if setup:
        assert kernel.run(setup)["status"] == "ok"
    plain = outcome(settled(kernel, body))
    if setup:
        assert kernel.run(setup)["status"] == "ok"
    tracked = outcome(settled(kernel, "%%track -q\n" + body))
    return plain, tracked


def test_semicolon_before_a_comment_hides_the_value(kernel):
    plain, tracked = plain_and_tracked(kernel, "b = 5\nb;  # comment\n")
    assert plain["out"] == [] and tracked == plain


def test_semicolon_inside_a_comment_does_not_hide_the_value(kernel):
    plain, tracked = plain_and_tracked(kernel, "b = 5\nb  # text ending with ;\n")
    assert plain["out"] == ["5"] and tracked == plain


def test_top_level_await_runs(kernel):
    plain, tracked = plain_and_tracked(kernel, "import asyncio\nawait asyncio.sleep(0)\n'done'\n")
    assert plain["out"] == ["'done'"] and tracked == plain
    assert last_run(kernel)["status"] == "FINISHED"


def test_future_import_carries_over_to_later_cells(kernel):
    res = kernel.run("%%track -q\nfrom __future__ import annotations\n")
    assert res["status"] == "ok", res
    res = kernel.run(
        "def fut(x: not_defined_anywhere) -> int:\n    return 1\nprint(fut.__annotations__['x'])"
    )
    assert res["status"] == "ok", res
    assert res["text"].strip() == "not_defined_anywhere"


def test_ast_transformers_are_applied(kernel):
    setup = (
        "import ast\n"
        "class _Doubler(ast.NodeTransformer):\n"
        "    def visit_Constant(self, node):\n"
        "        if node.value == 21:\n"
        "            return ast.copy_location(ast.Constant(42), node)\n"
        "        return node\n"
        "get_ipython().ast_transformers.append(_Doubler())\n"
    )
    assert kernel.run(setup)["status"] == "ok"
    try:
        plain, tracked = plain_and_tracked(kernel, "twenty_one = 21\ntwenty_one\n")
    finally:
        kernel.run("get_ipython().ast_transformers.clear()")
    assert plain["out"] == ["42"] and tracked == plain


def test_ast_node_interactivity_all_shows_every_expression(kernel):
    kernel.run("%config InteractiveShell.ast_node_interactivity = 'all'")
    try:
        plain, tracked = plain_and_tracked(kernel, "1 + 1\n'two'\nthree = 3\n")
    finally:
        kernel.run("%config InteractiveShell.ast_node_interactivity = 'last_expr'")
    assert plain["out"] == ["2", "'two'"] and tracked == plain


def test_syntax_error_is_identical(kernel):
    plain, tracked = plain_and_tracked(kernel, "x = (1,\n")
    assert plain["error"][0] == "SyntaxError" and tracked == plain
    assert not any("nbops" in line for line in tracked["traceback"])
    assert last_run(kernel)["status"] == "FAILED"


def test_runtime_error_traceback_has_no_nbops_frames(kernel):
    body = "def inner():\n    return 1 / 0\ninner()\n"
    plain, tracked = plain_and_tracked(kernel, body)
    assert plain["error"][0] == "ZeroDivisionError" and tracked == plain
    assert not any("nbops" in line for line in tracked["traceback"])


def test_out_value_and_underscore_like_untracked(kernel):
    res = kernel.run("%%track -q\n40 + 2\n")
    assert [c["data"]["text/plain"] for k, c in res["outputs"] if k == "execute_result"] == ["42"]
    res = kernel.run("print(_, Out[max(Out)])")
    assert res["text"].strip() == "42 42"


def test_object_array_is_recorded_as_not_fingerprinted(kernel):
    res = kernel.run(
        "%%track -q\nimport numpy as np\nmixed = np.array([{'C': 1}, [1, 2]], dtype=object)\n"
    )
    assert res["status"] == "ok" and "nbops" not in res["text"], res
    run = last_run(kernel)
    assert run["status"] == "FINISHED"
    assert run["values"]["mixed"]["not_fingerprinted"] == "ndarray[object]"
    res = kernel.run("%%track -q -n reads-mixed\nsize = len(mixed)\n")
    assert res["status"] == "ok" and "nbops" not in res["text"], res
    run = last_run(kernel)
    assert run["name"] == "reads-mixed" and run["status"] == "FINISHED"
    assert run["values"]["size"] == 2


@pytest.mark.parametrize(
    "body", ["%%time\nslept = 1\n", "!echo shell-escape\n", "%%capture captured\nprint('hidden')\n"]
)
def test_magics_and_shell_escapes_inside_a_tracked_cell(kernel, body):
    plain, tracked = plain_and_tracked(kernel, body)
    strip = re.compile(r"(Wall time|CPU times).*")
    assert strip.sub("", tracked["text"]) == strip.sub("", plain["text"])
    assert tracked["status"] == plain["status"] == "ok"
