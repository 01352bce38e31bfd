"""YAML in and out: files read as kubectl would accept them, output deterministic with readable PromQL."""

from __future__ import annotations

import codecs
import re
from typing import Any, Iterable

import yaml

# Deeper than any Observatory resource or Kubernetes object needs, and far below Python's recursion
# limit, so that no walk of a document (ours, pydantic's, json's) can overflow.
MAX_DEPTH = 100
# Far above any set of policies (20 MB read in ~2 CPU seconds), and a bound on what `-f /dev/zero` reads.
MAX_FILE_BYTES = 64 * 1024 * 1024
# YAML 1.1's printable characters (PyYAML reader.py NON_PRINTABLE), one search over the text.
_CONTROL = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class BadYAML(ValueError):
    """A file Observatory does not read; the message says where, why and what to do."""


class _Loader(yaml.CSafeLoader):
    """libyaml (fast, its own nesting limit), refusing duplicate keys as kubectl does."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # kubectl converts YAML with go-yaml v2, which refuses a key set twice (sigs.k8s.io/yaml,
        # yaml_test.go: `key "a" already set in map`); PyYAML would keep the last one silently.
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_object(key_node)
                if key in seen:
                    raise BadYAML(f'line {key_node.start_mark.line + 1}: key "{key}" already set in map (kubectl refuses '
                                  "a key written twice): keep one")
                seen.add(key)
        return super().construct_mapping(node, deep)



def load_all(raw: bytes) -> list[Any]:
    """Every document of a YAML stream (None for an empty one); BadYAML for anything kubectl would refuse.

    `raw` is read with at most MAX_FILE_BYTES + 1 bytes: one more tells it is too large.
    """
    if len(raw) > MAX_FILE_BYTES:
        raise BadYAML(f"larger than {MAX_FILE_BYTES // 1024 // 1024} MiB: split it into several files")
    text = _decode(raw)
    loader = _Loader(text)
    documents: list[Any] = []
    try:
        while loader.check_data():
            data = loader.get_data()
            _check_shape(data, len(documents) + 1)
            documents.append(data)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        if "nesting depth" in str(err.problem):  # libyaml's limit, reached before ours
            raise BadYAML(f"nested more than {MAX_DEPTH} levels deep{where}: flatten it") from None
        raise BadYAML(f"not valid YAML{where}: {err.problem or err}") from None
    except yaml.YAMLError as err:
        raise BadYAML(f"not valid YAML: {err}") from None
    finally:
        loader.dispose()
    return documents


def _decode(raw: bytes) -> str:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise BadYAML("is UTF-16 (it starts with a UTF-16 byte-order mark): save the file as UTF-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise BadYAML(f"not UTF-8: byte 0x{raw[err.start]:02x} at line {line}: save the file as UTF-8") from None
    text = text.removeprefix("\ufeff")  # a UTF-8 byte-order mark, as editors on Windows write it
    if found := _CONTROL.search(text):
        line = text.count("\n", 0, found.start()) + 1
        raise BadYAML(f"control character U+{ord(found.group()):04X} at line {line}: remove it (YAML allows only "
                      "tab, line breaks and printable characters)")
    return text


def _allowed_alias_ratio(values: int) -> float:
    # go-yaml's limit (yaml.v2 decode.go allowedAliasRatio), which kubectl applies: up to 99 % of the values
    # may come from aliases in a small document, falling to 10 % at 4,000,000 values.
    low, high = 400_000, 4_000_000
    return 0.99 if values <= low else 0.10 if values >= high else 0.99 - 0.89 * (values - low) / (high - low)


def _check_shape(data: Any, number: int) -> None:
    """Refuse excessive alias expansion (billion laughs) and deep nesting, walking without recursion."""
    values = from_aliases = 0
    seen: set[int] = set()
    stack: list[tuple[Any, int, bool]] = [(data, 1, False)]
    while stack:
        node, depth, in_alias = stack.pop()
        values += 1
        from_aliases += in_alias
        if from_aliases > 100 and values > 1000 and from_aliases / values > _allowed_alias_ratio(values):
            raise BadYAML(f"document {number}: its aliases (*name) expand into more than {values} values; write the "
                          "values out instead")
        if isinstance(node, (dict, list)):
            if depth > MAX_DEPTH:
                raise BadYAML(f"document {number}: nested more than {MAX_DEPTH} levels deep: flatten it")
            in_alias = in_alias or id(node) in seen
            seen.add(id(node))
            stack.extend((child, depth + 1, in_alias) for child in (node.values() if isinstance(node, dict) else node))


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


def dump_all(objects: Iterable[Any]) -> str:
    return yaml.dump_all(list(objects), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
