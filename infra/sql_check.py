"""Which text the read path runs: exactly one read statement, decided on ClickHouse's own parse of it.

The engine parses the text (:mod:`infra.reader` asks it for ``parseQueryToJSON`` with the text as a bound
string: parsed, never executed; the parser refuses multi-statements). The rules here then read that tree;
nothing here looks at SQL text. They refuse, each with a one-line reason:

- anything but a read statement: SELECT (WITH, UNION, INTERSECT, EXCEPT), SHOW (tables, databases, columns,
  indexes, settings, dictionaries, clusters), DESCRIBE, and EXPLAIN of one of those;
- ``INTO OUTFILE`` (the embedded engine writes the file even in readonly mode);
- ``FORMAT`` (the client chooses the output format);
- ``SETTINGS`` anywhere (the read path's limits are fixed; EXPLAIN's own options, ``EXPLAIN header=1``, are no
  settings and pass);
- table functions other than the few that only compute (``numbers``, ``zeros``, ``values``, ``view``,
  ``generate_series``): ``file``, ``url``, ``s3``, ``remote``, ``mysql``, ``postgresql``, ``hdfs``, ``input``,
  ``executable``, ``python`` ... reach files, the network, other servers or code;
- functions that read files (``file('/etc/passwd')`` works under readonly in the embedded engine).

Most statements have a JSON form; ``DESCRIBE`` does not, so it is read from ``EXPLAIN AST``'s tree instead
(:func:`check_tree`), with the same rules.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.errors import QueryRefused

JSON_READ_STATEMENTS = frozenset({
    "SelectWithUnionQuery", "SelectIntersectExceptQuery", "SelectQuery", "ShowTablesQuery", "ShowColumnsQuery",
    "ShowIndexesQuery",
})
"""Top-level node types (``parseQueryToJSON``) of the read statements; ``ExplainQuery`` of one of them too."""
TREE_READ_STATEMENTS = frozenset({"DescribeQuery"})
"""Read statements that have no JSON form, checked on ``EXPLAIN AST``'s tree."""
COMPUTING_TABLE_FUNCTIONS = frozenset({
    "numbers", "numbers_mt", "zeros", "zeros_mt", "values", "view", "generate_series", "generateseries"})
"""Table functions that reach nothing outside the query (compared in lower case)."""
FILE_FUNCTIONS = frozenset({"file", "catboostevaluate"})
"""Ordinary functions that read a file named in the query (lower case)."""

ALLOWED = "SELECT, WITH, SHOW, DESCRIBE or EXPLAIN"


def check_ast(ast: Mapping[str, Any]) -> None:
    """``ast`` (``parseQueryToJSON`` of the text) is one read statement with nothing the read path refuses;
    else :class:`~infra.errors.QueryRefused`."""
    statement = ast
    if ast.get("type") == "ExplainQuery":
        statement = ast.get("query") or {}
    kind = statement.get("type")
    if kind not in JSON_READ_STATEMENTS:
        raise QueryRefused(f"refused: only one read statement ({ALLOWED}) runs here; this is {_describe(kind)}")
    for node, key, parent in _walk(ast, None, None):
        if key == "out_file" or (key == "is_into_outfile_with_stdout" and node is True):
            raise QueryRefused("refused: INTO OUTFILE (the read path never writes files)")
        if key == "format_ast":
            raise QueryRefused("refused: FORMAT (the output format is the client's: sql --format)")
        if not isinstance(node, Mapping):
            continue
        if node.get("type") == "SetQuery" and not (key == "settings" and parent is ast and ast.get("type") == "ExplainQuery"):
            raise QueryRefused(_SETTINGS)
        if key == "table_function":
            _table_function(str(node.get("name", "")))
        elif node.get("type") == "Function":
            _function(str(node.get("name", "")))


def _walk(node: Any, key: str | None, parent: Any) -> Iterator[tuple[Any, str | None, Any]]:
    """Every value of the tree with the key it sits under and the mapping that holds it."""
    yield node, key, parent
    if isinstance(node, Mapping):
        for name, child in node.items():
            yield from _walk(child, name, node)
    elif isinstance(node, list):
        for child in node:
            yield from _walk(child, key, parent)


_SETTINGS = "refused: SETTINGS (the read path's limits on time, memory and result size are fixed)"


def _table_function(name: str) -> None:
    if name.lower() not in COMPUTING_TABLE_FUNCTIONS:
        raise QueryRefused(f"refused: table function {name}() reaches outside the database (files, network, other "
                           f"servers or code); allowed: {', '.join(sorted(COMPUTING_TABLE_FUNCTIONS - {'generateseries'}))}")


def _function(name: str) -> None:
    if name.lower() in FILE_FUNCTIONS:
        raise QueryRefused(f"refused: function {name}() reads files")


def _describe(kind: object) -> str:
    return {"InsertQuery": "an INSERT", "SetQuery": "a SET", "Set": "a SET", "DropQuery": "a DROP",
            "AlterQuery": "an ALTER", "CreateQuery": "a CREATE", "UseQuery": "a USE", "SystemQuery": "a SYSTEM query",
            "SYSTEM": "a SYSTEM query", "Explain": "an EXPLAIN of a statement that is not a read",
            "KillQueryQuery": "a KILL", "OptimizeQuery": "an OPTIMIZE"}.get(str(kind), f"a {kind or 'statement of unknown kind'}")


# --- EXPLAIN AST's tree, for the statements without a JSON form ------------------------------------------------


@dataclass
class Node:
    """A line of ``EXPLAIN AST``: its label (``Function file (children 1)`` without the count) and children."""

    label: str
    children: list[Node] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.label.split(" ", 1)[0]

    @property
    def name(self) -> str:
        parts = self.label.split(" ")
        return parts[1] if len(parts) > 1 else ""


def parse_tree(text: str) -> Node:
    """``EXPLAIN AST`` output (one node a line, one space of indent per level) as a tree."""
    root: Node | None = None
    stack: list[tuple[int, Node]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip(" "))
        label = line.strip()
        if label.endswith(")") and " (children " in label:
            label = label[: label.rindex(" (children ")].rstrip()
        node = Node(label)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            stack[-1][1].children.append(node)
        elif root is None:
            root = node
        else:
            raise QueryRefused("refused: more than one statement")
        stack.append((depth, node))
    if root is None:
        raise QueryRefused("refused: no statement")
    return root


def check_tree(text: str) -> None:
    """The same rules as :func:`check_ast`, on ``EXPLAIN AST``'s tree of a statement without a JSON form."""
    root = parse_tree(text)
    if root.kind not in TREE_READ_STATEMENTS:
        raise QueryRefused(f"refused: only one read statement ({ALLOWED}) runs here; this is {_describe(root.kind)}")
    for extra in root.children[1:]:  # after the table: INTO OUTFILE's file (a literal) or FORMAT's name
        raise QueryRefused("refused: INTO OUTFILE (the read path never writes files)" if extra.kind == "Literal"
                           else "refused: FORMAT (the output format is the client's: sql --format)")

    def visit(node: Node, parent: Node | None) -> None:
        if node.kind == "Set":
            raise QueryRefused(_SETTINGS)
        if node.kind == "Function":
            if parent is not None and parent.kind == "TableExpression":
                _table_function(node.name)
            else:
                _function(node.name)
        for child in node.children:
            visit(child, node)

    visit(root, None)
