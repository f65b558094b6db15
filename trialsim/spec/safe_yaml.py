"""Parse YAML with the safe loader and limits that make hostile documents fail fast with a clear message.

Limits (a real scenario or plan file has ~150 nodes, nesting ≤ 7 and no aliases):

- nesting depth ≤ :data:`MAX_DEPTH` collections and scalars on one path (so no ``RecursionError`` is possible);
- at most :data:`MAX_ALIASES` aliases (``*name``), none of them recursive;
- at most :data:`MAX_NODES` nodes once every alias is expanded, counted while composing (an alias adds the
  expanded size of its anchor), so an alias bomb ("billion laughs") stops after a few thousand nodes;
- integers of at most :data:`MAX_INT_CHARS` characters;
- duplicate keys in a mapping are an error (YAML forbids them; PyYAML keeps the last silently).

Every problem becomes one :class:`ScenarioError` naming the file and, where known, the line and column.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node
from yaml.reader import ReaderError

from trialsim.exceptions import Problem, ScenarioError, shorten, show_value

MAX_DEPTH = 40
MAX_ALIASES = 50
MAX_NODES = 10_000
MAX_INT_CHARS = 100
MERGE_TAG = "tag:yaml.org,2002:merge"
TYPICAL = "a scenario or plan file has a few hundred values and no aliases"


def _where(mark: yaml.Mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


class LimitedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with the limits of this module (depth, aliases, expanded nodes, duplicate keys)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._expanded = 0
        self._sizes: dict[int, int] = {}  # id(node) → its size with aliases expanded, once composed

    def _count(self, nodes: int, mark: yaml.Mark) -> None:
        self._expanded += nodes
        if self._expanded > MAX_NODES:
            raise ComposerError(None, None, f"more than {MAX_NODES:,} values (aliases expanded); {TYPICAL}", mark)

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        mark = self.peek_event().start_mark
        if self.check_event(AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise ComposerError(None, None, f"more than {MAX_ALIASES} aliases (*name); {TYPICAL}", mark)
            node = super().compose_node(parent, index)
            size = self._sizes.get(id(node))
            if size is None:
                raise ComposerError(None, None, "recursive alias: the anchored value contains itself", mark)
            self._count(size, mark)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
        before = self._expanded
        self._count(1, mark)
        node = super().compose_node(parent, index)
        self._sizes[id(node)] = self._expanded - before
        self._depth -= 1
        return node

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except ValueError as error:  # e.g. an impossible date, an integer of thousands of digits
            reason = f"cannot read this value ({shorten(str(error), 100)})"
            raise ConstructorError(None, None, reason, node.start_mark) from None

    def construct_yaml_int(self, node: Node) -> int:
        if len(node.value) > MAX_INT_CHARS:
            raise ConstructorError(None, None, f"an integer of {len(node.value):,} characters", node.start_mark)
        return super().construct_yaml_int(node)

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            first: dict[Any, yaml.Mark] = {}
            for key_node, _ in node.value:
                if key_node.tag == MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = first.setdefault(key, key_node.start_mark)
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                if seen is not key_node.start_mark:
                    raise ConstructorError(
                        None,
                        None,
                        f"duplicate key {show_value(key)} (first at {_where(seen)})",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, name: str) -> Any:
    """The document in ``text`` (from the file ``name``), or a :class:`ScenarioError` saying where it is invalid."""
    try:
        return yaml.load(text, Loader=LimitedLoader)  # a SafeLoader: no Python objects from tags
    except ReaderError as error:  # a control character, such as NUL
        code = ord(error.character) if isinstance(error.character, str) else error.character
        reason = f"character {error.position + 1} (#x{code:04x}) is not allowed in YAML"
        raise ScenarioError(Problem(name, "", f"invalid YAML: {reason}")) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at {_where(mark)}" if mark is not None else ""
        reason = " ".join(filter(None, (error.problem, error.context and f"({error.context})")))
        reason = shorten(reason, 200)
        raise ScenarioError(Problem(name, "", f"invalid YAML{where}: {reason}")) from None


LimitedLoader.add_constructor("tag:yaml.org,2002:int", LimitedLoader.construct_yaml_int)
