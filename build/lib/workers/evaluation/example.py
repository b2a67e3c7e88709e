"""`qwenfix bench make-example DIR`: a small CI-repair task set made on the spot — seven bugs in six
little repositories (Python, JavaScript, C), each a git commit whose command fails, with the gold
patch that fixes it. Shaped like real failures: an assertion whose cause is two calls away, an
exception raised in the faulty function, a file deep in a package, a renamed function, a wrong
setting in a module no traceback passes through, a compiler error, a Node test. Every command runs
offline in the default sandbox image."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from workers.workspace.git import run_git, stdout_text

_IDENTITY = {"GIT_AUTHOR_NAME": "qwenfix", "GIT_AUTHOR_EMAIL": "qwenfix@localhost",
             "GIT_COMMITTER_NAME": "qwenfix", "GIT_COMMITTER_EMAIL": "qwenfix@localhost",
             "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
PYTEST = "python -m pytest -q -p no:cacheprovider"


@dataclass(frozen=True)
class Example:
    id: str
    repo: str
    broken: dict[str, str]  # the commit's files
    fix: dict[str, str]  # files as the gold patch leaves them
    command: str
    note: str  # what kind of failure it is


SHOP = {
    "pytest.ini": "[pytest]\npythonpath = src\n",
    "README.md": "# shop\n\nA tiny shop: carts, a catalog, prices with tax.\n",
    "src/shop/__init__.py": "",
    "src/shop/catalog.py": (
        '"""Products on sale."""\n\nPRODUCTS = {"pen": 2.5, "book": 12.0}\n\n\n'
        "def price_of(name):\n    return PRODUCTS[name]\n\n\ndef list_products():\n    return sorted(PRODUCTS)\n"),
    "src/shop/cart.py": (
        "from shop.pricing.tax import rate_for\n\n\nclass Cart:\n    def __init__(self, region):\n"
        "        self.region = region\n        self.items = []\n\n    def add(self, price):\n"
        "        self.items.append(price)\n\n    def subtotal(self):\n        return sum(self.items)\n\n"
        "    def total(self):\n        return round(self.subtotal() * (1 + rate_for(self.region)), 2)\n"),
    "src/shop/pricing/__init__.py": "",
    "src/shop/pricing/discounts.py": (
        "def apply_discount(amount, percent):\n    return round(amount * (100 - percent) / 100, 2)\n"),
    "src/shop/pricing/tax.py": (
        '"""VAT by region code (upper case, ISO 3166)."""\n\nRATES = {"FR": 0.2, "DE": 0.19, "IT": 0.22}\n\n\n'
        "def rate_for(region):\n    return RATES.get(region, 0.0)\n"),
    "tests/test_catalog.py": (
        "from shop.catalog import list_products, price_of\n\n\ndef test_products():\n"
        '    assert list_products() == ["book", "pen"]\n    assert price_of("pen") == 2.5\n'),
    "tests/test_cart.py": (
        "from shop.cart import Cart\n\n\ndef test_total_includes_the_regions_tax():\n"
        '    cart = Cart("fr")\n    cart.add(10)\n    assert cart.total() == 12.0\n'),
}
TEXTKIT = {
    "pytest.ini": "[pytest]\n",
    "textkit/__init__.py": "",
    "textkit/stats.py": (
        "def mean(values):\n    return sum(values) / len(values)\n\n\n"
        "def spread(values):\n    return max(values) - min(values) if values else 0\n"),
    "textkit/words.py": (
        "import re\n\n\ndef words(text):\n    return re.findall(r\"[\\w']+\", text)\n\n\n"
        "def word_lengths(text):\n    return [len(w) for w in words(text)]\n"),
    "tests/test_stats.py": (
        "from textkit.stats import mean, spread\nfrom textkit.words import word_lengths\n\n\n"
        "def test_mean_of_word_lengths():\n    assert mean(word_lengths(\"a bb ccc\")) == 2\n\n\n"
        "def test_mean_of_nothing_is_zero():\n    assert mean(word_lengths(\"\")) == 0\n\n\n"
        "def test_spread():\n    assert spread([1, 5]) == 4\n"),
}
INVENTORY = {
    "pytest.ini": "[pytest]\npythonpath = src\n",
    "src/inventory/__init__.py": "",
    "src/inventory/core/__init__.py": "",
    "src/inventory/core/store.py": (
        "from inventory.core.keys.normalize import normalize_sku\n\n\nclass Store:\n"
        "    def __init__(self):\n        self.stock = {}\n\n    def receive(self, sku, qty):\n"
        "        key = normalize_sku(sku)\n        self.stock[key] = self.stock.get(key, 0) + qty\n\n"
        "    def remove(self, sku, qty):\n        key = normalize_sku(sku)\n        if self.stock[key] < qty:\n"
        "            raise ValueError(f\"only {self.stock[key]} of {sku} left\")\n        self.stock[key] -= qty\n"),
    "src/inventory/core/keys/__init__.py": "",
    "src/inventory/core/keys/normalize.py": (
        '"""SKUs are compared without spaces or dashes, in upper case."""\n\n\n'
        "def normalize_sku(sku):\n    cleaned = sku.replace(\"-\", \"\").replace(\" \", \"\")\n    return cleaned\n"),
    "src/inventory/reports/__init__.py": "",
    "src/inventory/reports/summary.py": (
        "def summary(store):\n    return {sku: qty for sku, qty in sorted(store.stock.items()) if qty}\n"),
    "tests/test_store.py": (
        "from inventory.core.store import Store\n\n\ndef test_receive_then_remove_with_another_spelling():\n"
        "    store = Store()\n    store.receive(\"ab-12\", 5)\n    store.remove(\"AB 12\", 2)\n"
        "    assert store.stock == {\"AB12\": 3}\n"),
}
CONFIG = {
    "pytest.ini": "[pytest]\n",
    "app/__init__.py": "",
    "app/config.py": (
        "import json\n\nDEFAULTS = {\"debug\": False, \"workers\": 2}\n\n\n"
        "def read_config(text):\n    values = dict(DEFAULTS)\n    values.update(json.loads(text or \"{}\"))\n"
        "    return values\n"),
    "app/server.py": (
        "from app import config\n\n\ndef start(text):\n    settings = config.read_config(text)\n"
        "    return f\"starting {settings['workers']} workers\"\n"),
    "tests/test_config.py": (
        "from app.config import load_config\n\n\ndef test_defaults():\n    assert load_config(\"\")[\"workers\"] == 2\n\n\n"
        "def test_override():\n    assert load_config('{\"debug\": true}')[\"debug\"] is True\n"),
}
EXPORT = {
    "pytest.ini": "[pytest]\npythonpath = src\n",
    "src/export/__init__.py": "",
    "src/export/writer.py": (
        "from export.formats.csv.dialect import DELIMITER, LINE_END\n\n\n"
        "def to_csv(rows):\n    return \"\".join(DELIMITER.join(str(cell) for cell in row) + LINE_END for row in rows)\n"),
    "src/export/formats/__init__.py": "",
    "src/export/formats/csv/__init__.py": "",
    "src/export/formats/csv/dialect.py": '"""The CSV dialect of every export."""\n\nDELIMITER = ";"\nLINE_END = "\\n"\n',
    "src/export/formats/json/__init__.py": "",
    "src/export/formats/json/encoder.py": "import json\n\n\ndef to_json(rows):\n    return json.dumps(rows)\n",
    "tests/test_writer.py": (
        "from export.writer import to_csv\n\n\ndef test_rows_are_comma_separated():\n"
        "    assert to_csv([[\"a\", 1], [\"b\", 2]]) == \"a,1\\nb,2\\n\"\n"),
}
SLUG = {
    "package.json": '{\n  "name": "slug",\n  "version": "1.0.0",\n  "type": "module",\n'
                    '  "scripts": {"test": "node --test test/"}\n}\n',
    "lib/slug.js": (
        "export function slugify(text) {\n  return text\n    .trim()\n    .toLowerCase()\n"
        "    .replace(/[^a-z0-9 ]/g, '')\n    .replace(/ +/g, '_');\n}\n\n"
        "export function titleCase(text) {\n  return text.replace(/\\b\\w/g, (c) => c.toUpperCase());\n}\n"),
    "test/slug.test.js": (
        "import { test } from 'node:test';\nimport assert from 'node:assert/strict';\n"
        "import { slugify } from '../lib/slug.js';\n\n"
        "test('slugify joins words with dashes', () => {\n  assert.equal(slugify(' Hello, World '), 'hello-world');\n});\n"),
}
VEC = {
    "Makefile": "check:\n\tgcc -Wall -Werror -o /tmp/vec-check src/vec.c src/main.c\n\t/tmp/vec-check\n",
    "src/vec.h": "#ifndef VEC_H\n#define VEC_H\n\ndouble dot(const double *a, const double *b, int n);\n\n#endif\n",
    "src/vec.c": (
        "#include \"vec.h\"\n\ndouble dot(const double *a, const double *b, int n)\n{\n    double sum = 0;\n"
        "    for (int i = 0; i < n; i++)\n        sum += a[i] * b[i]\n    return sum;\n}\n"),
    "src/main.c": (
        "#include <stdio.h>\n#include \"vec.h\"\n\nint main(void)\n{\n    double a[] = {1, 2, 3}, b[] = {4, 5, 6};\n"
        "    if (dot(a, b, 3) != 32) {\n        printf(\"dot is wrong\\n\");\n        return 1;\n    }\n"
        "    printf(\"ok\\n\");\n    return 0;\n}\n"),
}

EXAMPLES = [
    Example("shop-tax", "shop", SHOP, {"src/shop/pricing/tax.py": SHOP["src/shop/pricing/tax.py"].replace(
        "RATES.get(region, 0.0)", "RATES.get(region.upper(), 0.0)")}, PYTEST,
        "an assertion in a test; the cause two calls away, in a file the traceback never names"),
    Example("textkit-mean", "textkit", TEXTKIT, {"textkit/stats.py": TEXTKIT["textkit/stats.py"].replace(
        "    return sum(values) / len(values)", "    return sum(values) / len(values) if values else 0")}, PYTEST,
        "an exception raised in the faulty function"),
    Example("inventory-sku", "inventory", INVENTORY, {"src/inventory/core/keys/normalize.py": INVENTORY[
        "src/inventory/core/keys/normalize.py"].replace("    return cleaned", "    return cleaned.upper()")},
        PYTEST, "a KeyError in a caller; the cause deep in the package, one call away"),
    Example("config-rename", "config", CONFIG, {"app/config.py": CONFIG["app/config.py"] + (
        "\n\nload_config = read_config  # the name the callers use\n")}, PYTEST,
        "a test module that cannot import a renamed function"),
    Example("export-delimiter", "export", EXPORT, {"src/export/formats/csv/dialect.py": EXPORT[
        "src/export/formats/csv/dialect.py"].replace('DELIMITER = ";"', 'DELIMITER = ","')}, PYTEST,
        "a wrong setting in a module deep in the package that no traceback passes through"),
    Example("slug-dashes", "slug", SLUG, {"lib/slug.js": SLUG["lib/slug.js"].replace(".replace(/ +/g, '_')",
                                                                                      ".replace(/ +/g, '-')")},
        "node --test test/", "a Node test assertion; the cause in the module it imports"),
    Example("vec-semicolon", "vec", VEC, {"src/vec.c": VEC["src/vec.c"].replace("b[i]\n", "b[i];\n")},
        "make check", "a C compiler error"),
]


def make_example(root: Path) -> Path:
    """Write the repositories under root/repos and the tasks to root/tasks.jsonl; returns that file."""
    root.mkdir(parents=True, exist_ok=True)
    lines, made = [], {}
    for example in EXAMPLES:
        repo = root / "repos" / example.repo
        if example.repo not in made:
            made[example.repo] = _commit(repo, example.broken)
        gold = _gold_patch(repo, example.fix)
        lines.append(json.dumps({"id": example.id, "repo": f"repos/{example.repo}", "commit": made[example.repo],
                                 "command": example.command, "gold_patch": gold, "note": example.note}))
    tasks = root / "tasks.jsonl"
    tasks.write_text("\n".join(lines) + "\n")
    return tasks


def _git(repo: Path, *args: str) -> str:
    return run_git(["-C", str(repo), *args], cwd=repo, env=_IDENTITY).stdout.decode()


def _commit(repo: Path, files: dict[str, str]) -> str:
    if repo.exists():
        raise FileExistsError(f"{repo} already exists; make the example in an empty directory")
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "The state CI failed on")
    return stdout_text(run_git(["rev-parse", "HEAD"], cwd=repo))


def _gold_patch(repo: Path, fix: dict[str, str]) -> str:
    """The fix as a diff against the commit; the working tree is left as committed."""
    for name, text in fix.items():
        (repo / name).write_text(text)
    patch = _git(repo, "diff", "--no-color", "--no-ext-diff", "HEAD")
    _git(repo, "checkout", "-q", "--", ".")
    return patch
