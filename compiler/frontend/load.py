"""Parse YAML text into a plain tree plus a source map (spec path -> file, line, column)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from loopc.compiler.errors import SpecError, SpecErrors

SpecPath = tuple[str | int, ...]
Position = tuple[str, int, int]  # (file, line, column), 1-based

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_NULL_TAG = "tag:yaml.org,2002:null"
_BOOLS = {"true": True, "false": False, "True": True, "False": False}
_PACKAGE_HEADER = re.compile(r"^#\s*@package\s+(\S+)\s*$")
_HEADER_LINE = re.compile(r"^\s*#\s*@")
_MAX_DEPTH = 200
ALIAS_NODE_BUDGET = 100_000  # nodes that aliases may copy into one file's tree (a YAML "billion laughs" stops here)
_PLAIN_TAGS = frozenset({_STR_TAG, _INT_TAG, _BOOL_TAG, _NULL_TAG, "tag:yaml.org,2002:float",
                         "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"})


class SpecLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """PyYAML's fast safe loader with OmegaConf's scalar rules (``1e-3`` is a float, no timestamps)."""

    _plain_tags: dict[str, str] = {}

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        """Cache the tag of plain scalars: the regex scan is the loader's hottest Python code."""
        if kind is not ScalarNode or not implicit[0]:
            return super().resolve(kind, value, implicit)
        tag = self._plain_tags.get(value)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(self._plain_tags) < 50_000:
                self._plain_tags[value] = tag
        return tag


SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:
     [-+]?[0-9]+(?:_[0-9]+)*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9]+(?:_[0-9]+)*(?:[eE][-+]?[0-9]+)
    |\.[0-9]+(?:_[0-9]+)*(?:[eE][-+][0-9]+)?
    |[-+]?[0-9]+(?:_[0-9]+)*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)
SpecLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in SpecLoader.yaml_implicit_resolvers.items()
}
_SCALARS = SafeConstructor()


@dataclass
class RawDocument:
    """One YAML file as a plain tree, where each node was written, and its ``# @package`` header."""

    file: str
    tree: dict[str, Any]
    positions: dict[SpecPath, Position] = field(default_factory=dict)
    package: str | None = None
    interpolates: bool = False  # the text contains "${": composition must resolve interpolations


def read_spec_file(path: Path | str, display: str | None = None) -> RawDocument:
    """Read and parse one YAML file; unreadable or non-UTF-8 files become SpecErrors."""
    name = display or str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SpecErrors([SpecError(name, 1, 1, "LPC503", "", f"cannot read file: {exc.strerror or exc}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        message = "file is not UTF-8 text (binary file?)"
        raise SpecErrors([SpecError(name, line, 1, "LPC005", "", message, "save the spec as UTF-8 YAML")]) from None
    return parse_spec(text, name)


def parse_spec(text: str, path: str, require_mapping: bool = True) -> RawDocument:
    """Parse YAML ``text`` from ``path`` into a RawDocument; every problem is a located SpecError."""
    if "\x00" in text:
        raise SpecErrors([SpecError(path, 1, 1, "LPC005", "", "file contains NUL bytes (binary file?)")])
    try:
        root = yaml.compose(text, Loader=SpecLoader)
    except yaml.MarkedYAMLError as exc:
        raise SpecErrors([_syntax_error(exc, path)]) from None
    except yaml.YAMLError as exc:
        raise SpecErrors([SpecError(path, 1, 1, "LPC001", "", f"invalid YAML: {exc}")]) from None
    if root is None or (isinstance(root, ScalarNode) and root.tag.endswith(":null")):
        hint = "a spec starts with 'loopc: 1' followed by its sections"
        raise SpecErrors([SpecError(path, 1, 1, "LPC002", "", "file is empty", hint)])
    if require_mapping and not isinstance(root, MappingNode):
        line, col = _mark(root)
        kind = "a list" if isinstance(root, SequenceNode) else "a single value"
        message = f"the top level must be a mapping of sections, found {kind}"
        raise SpecErrors([SpecError(path, line, col, "LPC003", "", message, "write 'key: value' lines")])
    if "!" in text:
        _refuse_tags(text, path)
    builder = _TreeBuilder(path)
    tree = builder.build(root, ())
    if builder.errors:
        raise SpecErrors(builder.errors)
    return RawDocument(path, tree, builder.positions, package_header(text), "${" in text)


def _refuse_tags(text: str, path: str) -> None:
    """Every explicit ``!tag`` (``!!python/...``, ``!!str``, ``!custom``) on any node is an LPC006 error."""
    errors = []
    for event in yaml.parse(text, Loader=SpecLoader):
        tag = getattr(event, "tag", None)
        if tag is not None and isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent)):
            line, col = event.start_mark.line + 1, event.start_mark.column + 1
            hint = "remove the tag; quote a value to make it text"
            errors.append(SpecError(path, line, col, "LPC006", "", f"YAML tags are not supported: {tag!r}", hint))
    if errors:
        raise SpecErrors(errors)


def _syntax_error(exc: yaml.MarkedYAMLError, path: str) -> SpecError:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or "invalid YAML"
    context = f" ({exc.context})" if exc.context else ""
    return SpecError(path, line, col, "LPC001", "", f"YAML syntax error: {problem}{context}",
                     "check indentation, colons and quotes around this position")


def package_header(text: str) -> str | None:
    """The ``# @package X`` header among the leading comment lines, if any."""
    package = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not _HEADER_LINE.match(stripped):
            return package  # Hydra reads header lines ('# @key value') until the first other line
        match = _PACKAGE_HEADER.match(stripped)
        package = match.group(1) if match else package
    return package


def _mark(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _TreeBuilder:
    """Turns composed YAML nodes into dicts, lists and scalars, recording positions and problems."""

    def __init__(self, file: str):
        self.file = file
        self.positions: dict[SpecPath, Position] = {}
        self.errors: list[SpecError] = []
        self._active: set[int] = set()
        self._built: set[int] = set()  # collections expanded once: meeting one again means an alias
        self._sizes: dict[int, int] = {}
        self._copied = 0  # nodes copied by aliases so far
        self._alias_at: SpecPath | None = None  # where the alias being copied now was written

    def build(self, node: Node, path: SpecPath) -> Any:
        """The plain value of ``node`` (written at ``path``), recording where every node below starts."""
        self.positions.setdefault(path, (self.file, *_mark(node)))
        return self._value(node, path)

    def _value(self, node: Node, path: SpecPath) -> Any:
        if node.__class__ is ScalarNode:
            return self._scalar(node, path)
        if id(node) in self._active or len(path) > _MAX_DEPTH:
            self._error(node, path, "LPC006", "recursive alias: a node contains itself", None)
            return None
        copy = id(node) in self._built
        if copy and not self._within_alias_budget(node, path):
            return None
        outermost = copy and self._alias_at is None
        if outermost:
            self._alias_at = path
        self._built.add(id(node))
        self._active.add(id(node))
        try:
            if node.__class__ is MappingNode:
                return self._mapping(node, path)
            return self._sequence(node, path)
        finally:
            self._active.discard(id(node))
            if outermost:
                self._alias_at = None

    def _within_alias_budget(self, node: Node, path: SpecPath) -> bool:
        """Count the nodes an alias copies; past ALIAS_NODE_BUDGET the file is refused (LPC007, once)."""
        if self._copied > ALIAS_NODE_BUDGET:
            return False
        if self._alias_at is not None:  # inside a copy: its size was counted with the outermost alias
            return True
        self._copied += _tree_size(node, self._sizes)
        if self._copied <= ALIAS_NODE_BUDGET:
            return True
        alias = self._alias_at if self._alias_at is not None else path
        written = alias[:-1] if alias and isinstance(alias[-1], int) else alias  # alias marks are lost: its list
        file, line, col = self.positions.get(written, (self.file, *_mark(node)))
        message = f"aliases expand to more than {ALIAS_NODE_BUDGET} nodes (an alias bomb?)"
        hint = "write the repeated parts out, or use fewer nested aliases"
        self.errors.append(SpecError(file, line, col, "LPC007", ".".join(str(p) for p in alias), message, hint))
        return False

    def _sequence(self, node: SequenceNode, path: SpecPath) -> list[Any]:
        if node.tag not in _PLAIN_TAGS:
            self._error(node, path, "LPC006", f"YAML tags are not supported: {node.tag!r}", None)
            return []
        result, file, positions = [], self.file, self.positions
        for index, item in enumerate(node.value):
            child = (*path, index)
            mark = item.start_mark
            positions[child] = (file, mark.line + 1, mark.column + 1)
            result.append(self._value(item, child))
        return result

    def _scalar(self, node: Node, path: SpecPath) -> Any:
        tag, value = node.tag, node.value
        if tag == _STR_TAG:
            return value
        if tag == _INT_TAG and value.isdigit():
            return int(value)
        if tag == _BOOL_TAG and value in _BOOLS:
            return _BOOLS[value]
        if tag == _NULL_TAG:
            return None
        try:
            return _SCALARS.construct_object(node)
        except ConstructorError as exc:
            self._error(node, path, "LPC006", f"unsupported YAML value: {exc.problem}", "remove the '!' tag")
        except (ValueError, TypeError, OverflowError) as exc:
            self._error(node, path, "LPC006", f"unsupported YAML value {node.value!r}: {exc}", None)
        return None

    def _mapping(self, node: MappingNode, path: SpecPath) -> dict[str, Any]:
        if node.tag not in _PLAIN_TAGS:  # parse_spec refuses written tags first; this keeps the builder safe alone
            self._error(node, path, "LPC006", f"YAML tags are not supported: {node.tag!r}", None)
            return {}
        result: dict[str, Any] = {}
        first: dict[str, Node] = {}
        file, positions = self.file, self.positions
        for key_node, value_node in node.value:
            if key_node.tag == _STR_TAG and key_node.__class__ is ScalarNode:
                key = key_node.value
            elif key_node.tag == _MERGE_TAG:
                self._merge(value_node, path, result)
                continue
            else:
                key = self._key(key_node, path)
                if key is None:
                    continue
            child = (*path, key)
            if key in first:
                message = f"duplicate key '{key}' (first written on line {first[key].start_mark.line + 1})"
                self._error(key_node, child, "LPC004", message, "remove or rename one of them")
                continue
            first[key] = key_node
            mark = key_node.start_mark
            positions[child] = (file, mark.line + 1, mark.column + 1)
            result[key] = self._value(value_node, child)
        return result

    def _key(self, key_node: Node, path: SpecPath) -> str | None:
        if not isinstance(key_node, ScalarNode):
            self._error(key_node, path, "LPC006", "keys must be plain names, not lists or mappings", None)
            return None
        key = self._scalar(key_node, path)
        return key if isinstance(key, str) else str(key).lower() if isinstance(key, bool) else str(key)

    def _merge(self, value_node: Node, path: SpecPath, result: dict[str, Any]) -> None:
        """YAML merge keys (``<<: *base``): earlier keys of the mapping win over merged ones."""
        sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        for source in sources:
            merged = self._value(source, path)
            if not isinstance(merged, dict):
                self._error(source, path, "LPC006", "'<<' merges only mappings", None)
                continue
            for key, value in merged.items():
                result.setdefault(key, value)

    def _error(self, node: Node, path: SpecPath, code: str, message: str, hint: str | None) -> None:
        spec_path = ".".join(str(p) for p in path)
        self.errors.append(SpecError(self.file, *_mark(node), code, spec_path, message, hint))


def _tree_size(root: Node, sizes: dict[int, int]) -> int:
    """Nodes in the tree ``root`` expands to (aliases counted each time), capped past the alias budget."""
    cap = ALIAS_NODE_BUDGET + 1
    stack: list[tuple[Node, bool]] = [(root, False)]
    visiting: set[int] = set()  # a node met again while its children are counted: a cycle, reported as LPC006
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes or (not children_done and id(node) in visiting):
            continue
        children = _children(node)
        if children_done:
            sizes[id(node)] = min(cap, 1 + sum(sizes.get(id(c), 0) for c in children))
            continue
        visiting.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def _children(node: Node) -> list[Node]:
    if node.__class__ is MappingNode:
        return [part for pair in node.value for part in pair]
    return list(node.value) if node.__class__ is SequenceNode else []
