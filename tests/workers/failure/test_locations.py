"""Failure locations read from real-world outputs: Python tracebacks, pytest, compilers, JavaScript."""

from __future__ import annotations

from tests.repos import PYTEST_FAILURE
from workers.failure.locations import Location, failure_locations, normalize

TRACEBACK = """\
Traceback (most recent call last):
  File "/workspace/app/main.py", line 10, in <module>
    run()
  File "/workspace/app/core.py", line 5, in run
    x = json.loads(s)
  File "/usr/lib/python3.11/json/__init__.py", line 346, in loads
    return _default_decoder.decode(s)
json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)
"""

PYTEST_DEEP = """\
___________________________ TestCart.test_total[fr] ____________________________

self = <tests.test_cart.TestCart object at 0x7f>

    def test_total(self):
>       assert Cart("fr").total() == 12.0

tests/test_cart.py:9:
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _
src/shop/cart.py:14: in total
    return round(subtotal * (1 + rate_for(self.region)), 2)
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _
E   KeyError: 'FR'

src/shop/pricing/tax.py:5: KeyError
=========================== short test summary info ============================
FAILED tests/test_cart.py::TestCart::test_total[fr] - KeyError: 'FR'
"""


def test_a_python_traceback_gives_the_innermost_repository_frame_first():
    assert failure_locations(TRACEBACK) == [
        Location("app/core.py", 5, "run"), Location("app/main.py", 10, None)]  # the stdlib frame is not ours


def test_pytest_frames_and_node_ids():
    found = failure_locations(PYTEST_DEEP)
    assert found[:3] == [Location("src/shop/pricing/tax.py", 5, None), Location("src/shop/cart.py", 14, "total"),
                         Location("tests/test_cart.py", 9, None)]
    assert Location("tests/test_cart.py", None, "test_total", "test") in found
    assert failure_locations(PYTEST_FAILURE)[:2] == [Location("tests/test_calc.py", 5, None),
                                                     Location("tests/test_calc.py", None, "test_add", "test")]


def test_compiler_and_linter_errors_and_javascript_frames():
    output = """\
src/vec.c:12:5: error: expected ';' before 'return'
error[E0308]: mismatched types
  --> src/main.rs:3:5
src/a.ts(4,2): error TS2322: Type 'string' is not assignable to type 'number'.
[ERROR] /home/runner/work/app/app/src/main/java/App.java:[7,9] cannot find symbol
    at slugify (/workspace/lib/slug.js:5:11)
    at Object.<anonymous> (lib/slug.test.js:3:1)
    at node:internal/main/run_main_module:28:49
"""
    found = failure_locations(output)
    assert found[:2] == [Location("lib/slug.js", 5, "slugify"), Location("lib/slug.test.js", 3, None)]
    assert {(f.path, f.line) for f in found[2:]} == {
        ("src/vec.c", 12), ("src/main.rs", 3), ("src/a.ts", 4), ("src/main/java/App.java", 7)}


def test_paths_outside_the_checkout_are_dropped():
    assert normalize("/workspace/./pkg/a.py") == "pkg/a.py"
    assert normalize("/home/runner/work/calc/calc/calc.py") == "calc.py"
    for outside in ("/usr/lib/python3.11/x.py", ".venv/lib/python3.11/site-packages/y.py", "<frozen runpy>",
                    "node_modules/jest/x.js", "../other/z.py"):
        assert normalize(outside) is None
