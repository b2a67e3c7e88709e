"""The first prompt's evidence: code the failure involves, and the repository map, read from a real
git repository's objects."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from workers.agent.evidence import gather, render
from workers.agent.repo_map import RepoIndex, render_map
from workers.agent.symbols import symbols
from workers.workspace.snapshot import Snapshot

FILES = {
    "src/shop/pricing/tax.py": 'RATES = {"FR": 0.2, "DE": 0.19}\n\n\ndef rate_for(region):\n    return RATES[region]\n',
    "src/shop/cart.py": (
        "from shop.pricing.tax import rate_for\n\n\nclass Cart:\n    def __init__(self, region):\n"
        "        self.region = region\n        self.items = []\n\n    def add(self, price):\n"
        "        self.items.append(price)\n\n    def total(self):\n        subtotal = sum(self.items)\n"
        "        return round(subtotal * (1 + rate_for(self.region)), 2)\n"),
    "src/shop/catalog.py": "def list_products():\n    return []\n",
    "tests/test_cart.py": ("from shop.cart import Cart\n\n\ndef test_total_includes_tax():\n    cart = Cart('fr')\n"
                           "    cart.add(10)\n    assert cart.total() == 12.0\n"),
    "web/slug.js": "export function slugify(text) {\n  return text.toLowerCase().replace(/ /g, '_');\n}\n",
    "README.md": "# shop\n",
}
ASSERTION = """\
    def test_total_includes_tax():
        cart = Cart('fr')
        cart.add(10)
>       assert cart.total() == 12.0
E       assert 10.0 == 12.0

tests/test_cart.py:7: AssertionError
FAILED tests/test_cart.py::test_total_includes_tax - assert 10.0 == 12.0
"""


@pytest.fixture
def index(tmp_path) -> RepoIndex:
    root = tmp_path / "shop"
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "link.py").symlink_to("/etc/passwd")  # never read: not a regular file in git
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@e"]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "shop"], check=True)
    sha = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    (root / "src/shop/cart.py").write_text("overwritten in the worktree after the commit\n")
    return RepoIndex.build(Snapshot.at(Path(root), sha))


def test_an_assertion_in_a_test_brings_the_code_it_calls_two_hops_deep(index):
    shown = render(index, gather(index, ASSERTION, 4000))
    headings = [h for h, _ in shown]
    assert headings == ["tests/test_cart.py — test_total_includes_tax (lines 4-7; traceback)",
                        "src/shop/cart.py — Cart (lines 4-14; called by test_total_includes_tax)",
                        "src/shop/pricing/tax.py — rate_for (lines 4-5; called by Cart)"]
    assert "   14          return round(subtotal * (1 + rate_for(self.region)), 2)" in shown[1][1]
    assert "link.py" not in index.texts  # the symlink is not read


def test_the_budget_bounds_the_evidence(index):
    assert [s.path for s in gather(index, ASSERTION, 60)] == ["tests/test_cart.py"]
    assert gather(index, ASSERTION, 0) == []


def test_the_map_ranks_the_files_the_failure_leads_to_first_and_fits_its_budget(index):
    ranked = index.rank(["tests/test_cart.py"], ASSERTION)
    assert ranked[:3] == ["tests/test_cart.py", "src/shop/cart.py", "src/shop/pricing/tax.py"]
    text = render_map(index, ranked, 1000)
    assert "src/shop/cart.py\n  class Cart: __init__, add, total" in text
    assert "web/slug.js\n  export function slugify(text)" in text
    small = render_map(index, ranked, 20)
    assert len(small) <= 20 * 4 + 40 and small.startswith("tests/test_cart.py") and "more files not shown" in small


def test_symbols_in_other_languages_have_their_bodies():
    go = "package x\n\nfunc Add(a, b int) int {\n\treturn a - b\n}\n\ntype Stack struct {\n\titems []int\n}\n"
    assert [(s.name, s.line, s.end_line) for s in symbols("x.go", go)] == [("Add", 3, 5), ("Stack", 7, 9)]
    c = "#include <stdio.h>\n\nstatic int twice(int x)\n{\n    return x * 3;\n}\n"
    assert [(s.name, s.line, s.end_line) for s in symbols("t.c", c)] == [("twice", 3, 6)]
    js = "class Box {\n  open(key) {\n    return key;\n  }\n}\nconst shut = (a) => a;\n"
    assert [(s.name, s.kind, s.parent) for s in symbols("b.js", js)] == [
        ("Box", "class", None), ("open", "method", "Box"), ("shut", "function", None)]
