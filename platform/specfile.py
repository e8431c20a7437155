"""Where a sweep spec's values come from, and messages that point there.

A spec is read from a YAML file (each key path mapped to its line) and then changed by command-line
``key=value`` overrides. ``Source`` remembers both, so an error names the file and line of a value, or the
override that set it. The YAML guards (no recursive aliases, no alias bombs, no duplicate keys, UTF-8 only)
apply to the file and to every override value alike, and every message quotes at most a short excerpt of what
the user typed.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pydantic
import yaml

MAX_YAML_NODES = 100_000
MAX_OVERRIDE_CHARS = 10_000
EXCERPT_CHARS = 80


class SpecError(Exception):
    """A user mistake in a sweep spec; ``str(err)`` is the whole one-paragraph message."""


class _BadStructure(Exception):
    """A document no spec can be: an alias inside the value it names (``a: &x [*x]``), aliases that expand to an
    enormous document (a 'billion laughs'), or a key given twice in one mapping."""


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """``repr(value)``, cut to ``limit`` characters: messages never echo a whole document."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"


def closest(word: Any, options: list[str]) -> str:
    """' Did you mean ...?' for the nearest option, else the valid options, else nothing."""
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.5)
    if close:
        return f" Did you mean {close[0]!r}?"
    return f" Valid keys here: {', '.join(options)}." if options else ""


def dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _line_index(root: yaml.Node) -> dict[tuple[Any, ...], int]:
    """Map every key path in a composed YAML document to its 1-based line number (and enforce the guards)."""
    lines: dict[tuple[Any, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[Any, ...], inside: frozenset[int]) -> None:
        line = node.start_mark.line + 1
        if id(node) in inside:
            raise _BadStructure(f", line {line}: an alias (*name) refers to the value that contains it, which "
                                "makes the spec infinite. Repeat the values instead.")
        if len(lines) > MAX_YAML_NODES:
            raise _BadStructure(f": the document expands to more than {MAX_YAML_NODES} values (aliases "
                                "repeated inside aliases?). A sweep spec is small.")
        lines[path] = line
        inside = inside | {id(node)}
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, value_node in node.value:
                # A non-scalar key is unhashable; the loader rejects it with a line number.
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else f"<{key_node.id}>"
                key_line = key_node.start_mark.line + 1
                if key in seen and key != "<<":
                    raise _BadStructure(f", lines {seen[key]} and {key_line}: key "
                                        f"{excerpt(dotted((*path, key)))} is given twice, and YAML would keep only "
                                        "the second. Merge the two into one.")
                seen[key] = key_line
                walk(value_node, (*path, key), inside)
                lines[(*path, key)] = key_line
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*path, index), inside)

    walk(root, (), frozenset())
    return lines


def parse_yaml(text: str, where: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """(value, line index) of YAML ``text``; SpecError (prefixed by ``where``) for bad YAML or structure."""
    try:
        node = yaml.compose(text)
        # Guards first: the loader would build a self-containing value or expand an alias bomb.
        lines = _line_index(node) if node is not None else {}
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f", line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{where}{at}: not valid YAML ({excerpt(problem, 200)[1:-1]}). Fix the syntax.") from None
    except _BadStructure as exc:
        raise SpecError(f"{where}{exc}") from None
    except RecursionError:
        raise SpecError(f"{where}: the YAML is nested too deeply to be a sweep spec.") from None
    return data, lines


def read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[Any, ...], int]]:
    """Parse a YAML mapping and its line index; SpecError for unreadable files, non-UTF-8 text or bad YAML."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the spec ({exc.strerror or exc}). Check the path.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: the spec is not UTF-8 text (byte {exc.start} is {raw[exc.start]:#04x}). Save it "
                        "as UTF-8 (a binary file, or one saved as Latin-1 or UTF-16, cannot be read).") from None
    if "\x00" in text:
        raise SpecError(f"{path}: the spec contains NUL characters, so it is not a text file (UTF-16?). "
                        "Save it as UTF-8.")
    data, lines = parse_yaml(text, str(path))
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a sweep spec is a YAML mapping (name:, trainer:, ...), got {type(data).__name__}.")
    return data, lines


class Source:
    """The spec file's line index plus the key paths that command-line overrides set."""

    def __init__(self, path: str | Path, lines: dict[tuple[Any, ...], int]) -> None:
        self.path = str(path)
        self.lines = lines
        self.overrides: dict[tuple[Any, ...], str] = {}

    def where(self, *loc: Any) -> str:
        """'FILE, line N' for a value of the file, or 'command-line override K=V' for one an override set."""
        for end in range(len(loc), 0, -1):
            override = self.overrides.get(tuple(loc[:end]))
            if override is not None:
                return f"command-line override {excerpt(override)}"
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None and end:
                return f"{self.path}, line {line}"
        return self.path

    def rename(self, loc: tuple[Any, ...], old: Any, new: Any) -> None:
        """Key ``old`` under ``loc`` is now called ``new``: its line and override (and those of what it holds)
        answer for ``new`` too, so a later error about the renamed key still names where it was written."""
        depth = len(loc)
        for index in (self.lines, self.overrides):
            for key in [k for k in index if k[:depth] == loc and len(k) > depth and k[depth] == old]:
                index.setdefault((*loc, new, *key[depth + 1:]), index[key])  # type: ignore[arg-type]

    def apply_override(self, data: dict[str, Any], override: str) -> None:
        """Apply one ``dotted.key=value`` override (value parsed as guarded YAML) to ``data`` in place."""
        shown = excerpt(override)
        if len(override) > MAX_OVERRIDE_CHARS:
            raise SpecError(f"command-line override {shown}: {len(override)} characters is too long for one "
                            f"value (at most {MAX_OVERRIDE_CHARS}); put it in the spec file.")
        if "=" not in override:
            raise SpecError(f"command-line override {shown}: write key=value, e.g. budget.trials=4.")
        key, _, raw = override.partition("=")
        parts = [part for part in key.strip().split(".") if part]
        if not parts:
            raise SpecError(f"command-line override {shown}: the key is empty.")
        try:
            value, _ = parse_yaml(raw, f"command-line override {shown}")
        except SpecError as err:
            if "not valid YAML" not in str(err):
                raise
            value = raw  # not YAML: the text itself (validation says if it does not fit)
        target = data
        for index, part in enumerate(parts[:-1]):
            child = target.setdefault(part, {})
            if not isinstance(child, dict):
                raise SpecError(f"command-line override {shown}: '{dotted(tuple(parts[: index + 1]))}' is not a "
                                "mapping in the spec.")
            target = child
        target[parts[-1]] = value
        self.overrides[tuple(parts)] = override


def user_loc(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The part of a pydantic error location that is a path in the user's document.

    pydantic puts the names of union members and validators into ``loc`` (``list[Objective]``,
    ``function-after[...]``); a part is kept only where the document has that key or index, plus the final
    part of an unknown key, so a key spelled like a union member (``'[': null``) is still the user's key.
    """
    kept: list[Any] = []
    current = data
    for index, part in enumerate(loc):
        in_mapping = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if in_mapping or in_list:
            kept.append(part)
            current = current[part]
        elif index == len(loc) - 1 and isinstance(part, (str, int)) and not _internal(part):
            kept.append(part)  # a missing key: named in the message
    return tuple(kept)


def _internal(part: Any) -> bool:
    return isinstance(part, str) and ("[" in part or part.startswith("function-") or part in (
        "Objective", "tuple[float, float]", "tuple[Integer, Integer]"))


def format_validation(err: pydantic.ValidationError, source: Source, data: Any,
                      allowed_keys: Any) -> str:
    """One line per problem: where, the key path, what is wrong, and a short excerpt of the value.

    ``allowed_keys(loc)`` lists the valid keys under ``loc`` for 'did you mean'."""
    problems = []
    for item in err.errors():
        loc = user_loc(data, tuple(item["loc"]))
        where = source.where(*loc)
        if item["type"] == "extra_forbidden" and loc:
            hint = closest(loc[-1], allowed_keys(loc[:-1]))
            problems.append(f"{where}: unknown key {excerpt(dotted(loc))}.{hint}")
            continue
        message = item["msg"].removeprefix("Value error, ")
        given = item.get("input")
        if item["type"] in ("missing", "search_space"):  # the message names the problem; the value adds nothing
            problems.append(f"{where}: {excerpt(dotted(loc))}: {message}.")
        elif isinstance(given, (dict, list)) and len(repr(given)) > EXCERPT_CHARS:
            # A whole section (a model-level check): the message names what is wrong in it.
            problems.append(f"{where}: {excerpt(dotted(loc))}: {message}.")
        else:
            problems.append(f"{where}: {excerpt(dotted(loc))}: {message} (got {excerpt(given)}).")
    # One message per location is enough: union branches repeat themselves.
    return "\n".join(dict.fromkeys(problems))
