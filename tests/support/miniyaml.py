"""A small YAML reader for the repository's own config files (Prometheus rules and tests,
Grafana provisioning, docker-compose.yml), which the contract tests inspect.

PyYAML is not a dependency of the project, so this reads the subset those files use:
block mappings and sequences (including ``- key: value`` items), flow ``[...]`` and
``{...}`` on one line, plain / single-quoted / double-quoted scalars, ``|`` and ``>`` block
scalars with ``-``/``+`` chomping, and comments. Every scalar stays a string (an empty
value is None). Anchors, aliases, tags and several documents are refused with an error
rather than misread.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

_BLOCK_SCALAR = re.compile(r"^([|>])([+-]?)\s*$")


class YamlError(ValueError):
    pass


def load_file(path: str | Path) -> Any:
    return loads(Path(path).read_text(encoding="utf-8"))


def loads(text: str) -> Any:
    lines = [_Line(n + 1, raw) for n, raw in enumerate(text.splitlines())]
    parser = _Parser(lines)
    i = parser.skip(0)
    if i >= len(lines):
        return None
    value, i = parser.block(i, lines[i].indent)
    i = parser.skip(i)
    if i < len(lines):
        raise YamlError(f"line {lines[i].number}: unexpected content {lines[i].raw.strip()!r}")
    return value


class _Line:
    __slots__ = ("indent", "number", "raw", "text")

    def __init__(self, number: int, raw: str) -> None:
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise YamlError(f"line {number}: tab in indentation")
        self.number = number
        self.raw = raw
        self.indent = len(raw) - len(raw.lstrip(" "))
        self.text = _strip_comment(raw.strip())

    @property
    def blank(self) -> bool:
        return not self.text


def _strip_comment(s: str) -> str:
    quote = ""
    for i, ch in enumerate(s):
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"':
                continue
        elif ch in "\"'" and (i == 0 or s[i - 1] in " [{,:-"):
            quote = ch
        elif ch == "#" and (i == 0 or s[i - 1] == " "):
            return s[:i].rstrip()
    return s


class _Parser:
    def __init__(self, lines: list[_Line]) -> None:
        self.lines = lines

    def skip(self, i: int) -> int:
        while i < len(self.lines) and self.lines[i].blank:
            if self.lines[i].raw.strip() == "---" and i > 0:
                raise YamlError("several documents are not supported")
            i += 1
        while i < len(self.lines) and (self.lines[i].blank or self.lines[i].text == "---"):
            i += 1
        return i

    def block(self, i: int, indent: int) -> tuple[Any, int]:
        line = self.lines[i]
        if line.text == "-" or line.text.startswith("- "):
            return self.sequence(i, indent)
        return self.mapping(i, indent)

    def mapping(self, i: int, indent: int) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        while i < len(self.lines):
            line = self.lines[i]
            if line.indent < indent:
                break
            if line.indent > indent:
                raise YamlError(f"line {line.number}: unexpected indentation")
            if line.text.startswith("- ") or line.text == "-":
                break
            key, rest = _split_key(line)
            if key in out:
                raise YamlError(f"line {line.number}: duplicate key {key!r}")
            i += 1
            out[key], i = self.value(rest, i, indent, line)
            i = self.skip(i)
        return out, i

    def sequence(self, i: int, indent: int) -> tuple[list[Any], int]:
        out: list[Any] = []
        while i < len(self.lines):
            line = self.lines[i]
            if line.indent != indent or not (line.text == "-" or line.text.startswith("- ")):
                if line.indent > indent:
                    raise YamlError(f"line {line.number}: unexpected indentation")
                break
            rest = line.text[1:].lstrip(" ")
            if not rest:
                i = self.skip(i + 1)
                if i < len(self.lines) and self.lines[i].indent > indent:
                    item, i = self.block(i, self.lines[i].indent)
                else:
                    item = None
            elif _is_mapping_entry(rest):
                # "- key: value": a mapping whose first key sits after the dash
                col = indent + (len(line.text) - len(rest))
                self.lines[i] = _Line(line.number, " " * col + rest)
                item, i = self.mapping(i, col)
            else:
                item, i = self.value(rest, i + 1, indent, line)
            out.append(item)
            i = self.skip(i)
        return out, i

    def value(self, rest: str, i: int, indent: int, line: _Line) -> tuple[Any, int]:
        if rest.startswith(("&", "*", "!")):
            raise YamlError(f"line {line.number}: anchors, aliases and tags are not supported")
        m = _BLOCK_SCALAR.match(rest)
        if m:
            return self.block_scalar(i, indent, m.group(1), m.group(2))
        if rest:
            return _inline(rest, line.number), i
        j = self.skip(i)
        if j < len(self.lines):
            nxt = self.lines[j]
            if nxt.indent > indent:
                return self.block(j, nxt.indent)
            if nxt.indent == indent and (nxt.text == "-" or nxt.text.startswith("- ")):
                return self.sequence(j, indent)
        return None, i

    def block_scalar(self, i: int, indent: int, style: str, chomp: str) -> tuple[str, int]:
        body: list[str] = []
        content_indent: int | None = None
        while i < len(self.lines):
            raw = self.lines[i].raw
            if raw.strip():
                ind = len(raw) - len(raw.lstrip(" "))
                if ind <= indent:
                    break
                if content_indent is None:
                    content_indent = ind
                if ind < content_indent:
                    break
                body.append(raw[content_indent:])
            else:  # spaces beyond the content indentation are content
                keep = content_indent is not None and len(raw) > content_indent
                body.append(raw[content_indent:] if keep else "")
            i += 1
        trailing = 0
        while body and body[-1] == "":
            body.pop()
            trailing += 1
        if style == "|":
            text = "\n".join(body)
        else:  # folded: single newlines become spaces, blank lines stay newlines
            text = ""
            for n, part in enumerate(body):
                if n == 0:
                    text = part
                elif part == "":
                    text += "\n"
                elif text.endswith("\n") or part.startswith(" ") or body[n - 1].startswith(" "):
                    text += part if text.endswith("\n") else "\n" + part
                else:
                    text += " " + part
        if chomp == "-":
            return text, i
        if chomp == "+":
            return text + "\n" * (trailing + 1), i
        return (text + "\n") if body else "", i


def _is_mapping_entry(s: str) -> bool:
    if s[0] in "[{\"'":
        if s[0] in "\"'":
            end = _quoted_end(s, 0)
            return s[end:].startswith(": ") or s[end:] == ":"
        return False
    return bool(re.match(r"^[^\s:#][^:#]*?:(\s|$)", s))


def _split_key(line: _Line) -> tuple[str, str]:
    s = line.text
    if s[0] in "\"'":
        end = _quoted_end(s, 0)
        key = _inline(s[:end], line.number)
        after = s[end:]
    else:
        m = re.match(r"^([^:]+?):(\s|$)", s)
        if not m:
            raise YamlError(f"line {line.number}: expected 'key: value', got {s!r}")
        key, after = m.group(1).strip(), s[m.end(1) :]
    if not after.startswith(":"):
        raise YamlError(f"line {line.number}: expected ':' after key")
    return str(key), after[1:].strip()


def _quoted_end(s: str, start: int) -> int:
    q = s[start]
    i = start + 1
    while i < len(s):
        if q == '"' and s[i] == "\\":
            i += 2
            continue
        if s[i] == q:
            if q == "'" and i + 1 < len(s) and s[i + 1] == "'":
                i += 2
                continue
            return i + 1
        i += 1
    raise YamlError(f"unterminated quoted string: {s!r}")


def _unquote(s: str, number: int) -> str:
    if s[0] == "'":
        return s[1:-1].replace("''", "'")
    try:
        return str(json.loads(s))
    except ValueError:
        raise YamlError(f"line {number}: unsupported escape in {s!r}") from None


def _inline(s: str, number: int) -> Any:
    s = s.strip()
    if s.startswith(("&", "*", "!")):
        raise YamlError(f"line {number}: anchors, aliases and tags are not supported")
    if s[0] in "[{":
        value, end = _flow(s, 0, number)
        if s[end:].strip():
            raise YamlError(f"line {number}: trailing content after flow collection")
        return value
    if s[0] in "\"'":
        end = _quoted_end(s, 0)
        if s[end:].strip():
            raise YamlError(f"line {number}: trailing content after quoted string")
        return _unquote(s[:end], number)
    return s


def _flow(s: str, i: int, number: int) -> tuple[Any, int]:
    opener = s[i]
    closer = "]" if opener == "[" else "}"
    items: list[Any] = []
    mapping: dict[str, Any] = {}
    i += 1
    while True:
        while i < len(s) and s[i] == " ":
            i += 1
        if i >= len(s):
            raise YamlError(f"line {number}: unterminated flow collection")
        if s[i] == closer:
            return (items if opener == "[" else mapping), i + 1
        item, i = _flow_scalar(s, i, number, in_map_key=opener == "{")
        while i < len(s) and s[i] == " ":
            i += 1
        if opener == "{":
            if i >= len(s) or s[i] != ":":
                raise YamlError(f"line {number}: expected ':' in flow mapping")
            i += 1
            while i < len(s) and s[i] == " ":
                i += 1
            value, i = _flow_scalar(s, i, number, in_map_key=False)
            mapping[str(item)] = value
        else:
            items.append(item)
        while i < len(s) and s[i] == " ":
            i += 1
        if i < len(s) and s[i] == ",":
            i += 1
        elif i < len(s) and s[i] != closer:
            raise YamlError(f"line {number}: expected ',' or {closer!r} in flow collection")


def _flow_scalar(s: str, i: int, number: int, in_map_key: bool) -> tuple[Any, int]:
    if s[i] in "[{":
        return _flow(s, i, number)
    if s[i] in "\"'":
        end = _quoted_end(s, i)
        return _unquote(s[i:end], number), end
    j = i
    while j < len(s) and s[j] not in ",]}":
        if in_map_key and s[j] == ":" and (j + 1 == len(s) or s[j + 1] == " "):
            break
        j += 1
    text = s[i:j].strip()
    return (text if text else None), j
