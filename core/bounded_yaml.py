"""YAML from people the app does not trust (a pull request's workflow, its actions): anchors are
allowed, as GitHub allows them, but a document whose aliases expand it beyond reason (the
"billion laughs" shape: nine lists of nine aliases, nine deep, is 387 million strings once
rendered) or that nests deeper than Python can walk is refused before anything reads it."""

from __future__ import annotations

from typing import Any

import yaml

MAX_NODES = 200_000  # the document as its readers will see it, every alias expanded


class TooLarge(yaml.YAMLError):
    pass


def load(text: str, loader: type[yaml.SafeLoader] = yaml.SafeLoader, max_nodes: int = MAX_NODES) -> Any:
    try:
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader (sub)class
        expanded_size(data, max_nodes)
    except RecursionError as exc:
        raise TooLarge("the document nests too deeply") from exc
    return data


def expanded_size(data: Any, max_nodes: int) -> int:
    """How many nodes `data` has with every shared (aliased) node counted each time it is
    reached; TooLarge past `max_nodes`. Each distinct node is measured once."""
    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        known = sizes.get(id(node))
        if known is not None:
            return known
        children = [x for pair in node.items() for x in pair] if isinstance(node, dict) else node
        total = 1
        for child in children:
            total += size(child)
            if total > max_nodes:
                raise TooLarge(f"the document expands to more than {max_nodes:,} nodes (through its aliases)")
        sizes[id(node)] = total
        return total

    return size(data)
