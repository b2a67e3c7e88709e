"""A fix's blocks of changed lines, and whether a later version of a file still has them."""

from __future__ import annotations

from workers.github.fix_blocks import fix_blocks, present

PATCH = """\
diff --git a/calc.py b/calc.py
--- a/calc.py
+++ b/calc.py
@@ -1,4 +1,4 @@
 def add(a, b):
-    return a - b
+    return a + b
 
 
@@ -8,3 +8,2 @@ def sub(a, b):
 def mul(a, b):
-    print("debug")
     return a * b
diff --git a/old.py b/old.py
deleted file mode 100644
--- a/old.py
+++ /dev/null
@@ -1 +0,0 @@
-x = 1
"""
FIXED = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"


def test_one_block_per_hunk_with_its_suggestion_line_and_neighbours():
    change, deletion, removed_file = fix_blocks(PATCH)
    assert change == {"path": "calc.py", "deleted": False, "line": 2, "state": "pending", "sha": None,
                      "lines": ["def add(a, b):", "    return a + b", ""]}
    assert deletion["lines"] == ["def mul(a, b):", "    return a * b"] and deletion["line"] == 9
    assert removed_file["deleted"] and removed_file["path"] == "old.py"


def test_a_later_file_has_the_blocks_or_not():
    change, deletion, removed_file = fix_blocks(PATCH)
    assert present(change, FIXED) and present(deletion, FIXED) and present(removed_file, None)
    assert not present(change, FIXED.replace("a + b", "a - b", 1))
    assert not present(deletion, FIXED.replace("    return a * b", '    print("debug")\n    return a * b'))
    assert not present(change, None) and not present(removed_file, "x = 1\n")
    assert present(change, FIXED.replace("    return a + b\n", "    return a + b   \n", 1))  # trailing spaces
    assert fix_blocks("not a patch") == []
