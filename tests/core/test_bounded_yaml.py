"""Untrusted YAML: anchors as workflows use them load; documents that explode do not."""

from __future__ import annotations

import pytest

from core import bounded_yaml
from workers.failure.workflow import WorkflowError, parse_workflow


def test_anchors_as_workflows_use_them_load():
    data = bounded_yaml.load("""
defaults: &python
  runs-on: ubuntu-latest
  steps: [{run: pytest}]
jobs:
  a: *python
  b: {<<: *python, name: other}
""")
    assert data["jobs"]["a"]["steps"] == [{"run": "pytest"}] and data["jobs"]["b"]["name"] == "other"


def test_a_document_that_aliases_expand_beyond_reason_is_refused():
    laughs = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 7)]
    with pytest.raises(bounded_yaml.TooLarge, match="expands to more than 200,000 nodes"):
        bounded_yaml.load("\n".join(laughs))
    assert bounded_yaml.load("\n".join(laughs[:5]))["a4"][0][0][0][0] == ["x"] * 9  # 7,381 nodes: fine


def test_nesting_deeper_than_python_walks_is_refused_as_yaml():
    with pytest.raises(bounded_yaml.TooLarge):
        bounded_yaml.load("[" * 100_000 + "]" * 100_000)
    with pytest.raises(WorkflowError, match="not valid YAML"):
        parse_workflow("jobs: " + "[" * 100_000 + "]" * 100_000)
