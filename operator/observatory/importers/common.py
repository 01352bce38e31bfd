"""What every importer shares: bounded YAML, typed reads that report, names, the final check."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from ..compile import CompileError, compile_resource
from ..compile.rules import shorten
from ..models import parse_resource
from ..models.common import (
    API_VERSION,
    LABEL_NAME_PATTERN,
    Duration,
    ObjectMeta,
    duration_seconds,
)
from ..models.slo import MAX_WINDOW_DAYS, MIN_WINDOW_DAYS

# Bounds on hostile input: SLO files are a few KiB. Expanded nodes count every alias as the whole
# node it stands for, so an alias bomb (a billion laughs in 1 KiB) is refused before it is built.
MAX_FILE_BYTES = 1024 * 1024
MAX_DOCUMENTS = 1000
MAX_DEPTH = 64
MAX_NODES = 200_000
# The model's limits for metadata.name (a DNS-1123 subdomain) and spec.description.
MAX_NAME_LENGTH = 253
MAX_DESCRIPTION = 1024


@dataclass(frozen=True)
class Source:
    """One input file as read: its name for messages and its raw bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class Problem:
    """Something in a source that was not imported as written: where, what and why.

    `fatal` problems stop the import (nothing is printed): unreadable input, a missing namespace.
    """

    source: str
    document: int  # 1-based position in its file; 0 for the file as a whole
    path: str
    message: str
    fatal: bool = False

    def __str__(self) -> str:
        where = [self.source] + ([f"document {self.document}"] if self.document else []) + ([self.path] if self.path else [])
        return ": ".join(where + [self.message])


@dataclass
class Result:
    documents: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def fatal(self) -> bool:
        return any(p.fatal for p in self.problems)


class InputTooLarge(ValueError):
    pass


def _measure(text: str) -> None:
    """Refuse too many documents, nesting too deep, or too many nodes once aliases are expanded."""
    documents, total = 0, 0
    open_counts: list[int] = []
    open_anchors: list[str | None] = []
    sizes: dict[str, int] = {}
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            sizes = {}  # anchors are local to their document
            if documents > MAX_DOCUMENTS:
                raise InputTooLarge(f"more than {MAX_DOCUMENTS} documents")
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            count, anchor = open_counts.pop(), open_anchors.pop()
            if anchor:
                sizes[anchor] = count
            if open_counts:
                open_counts[-1] += count
            continue
        if isinstance(event, yaml.AliasEvent):
            size = sizes.get(event.anchor, 1)
        elif isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent)):
            size = 1
        else:
            continue
        total += size
        if total > MAX_NODES:
            raise InputTooLarge(f"more than {MAX_NODES} YAML nodes with aliases expanded (an alias bomb?)")
        if isinstance(event, yaml.CollectionStartEvent):
            open_counts.append(1)
            open_anchors.append(event.anchor)
            if len(open_counts) > MAX_DEPTH:
                raise InputTooLarge(f"nested deeper than {MAX_DEPTH} levels")
        else:
            if open_counts:
                open_counts[-1] += size
            if isinstance(event, yaml.ScalarEvent) and event.anchor:
                sizes[event.anchor] = 1


def documents(source: Source) -> tuple[list[Any], list[Problem]]:
    """The YAML documents of a source, or a fatal problem saying why it cannot be read."""
    def fatal(message: str) -> tuple[list[Any], list[Problem]]:
        return [], [Problem(source.name, 0, "", message, fatal=True)]

    if len(source.data) > MAX_FILE_BYTES:
        return fatal(f"larger than {MAX_FILE_BYTES // 1024} KiB; split it into several files")
    try:
        text = source.data.decode("utf-8")
    except UnicodeDecodeError as err:
        return fatal(f"not UTF-8 (invalid byte at offset {err.start}); save the file as UTF-8")
    try:
        _measure(text)
        return [d for d in yaml.load_all(text, Loader=yaml.SafeLoader) if d is not None], []
    except InputTooLarge as err:
        return fatal(f"refused: {err}")
    except yaml.YAMLError as err:
        return fatal(f"invalid YAML: {' '.join(str(err).split())}")


@dataclass
class Reader:
    """Typed reads of one source document; a wrong type is reported at its path, never raised."""

    source: str
    document: int
    problems: list[Problem]

    def report(self, path: str, message: str, *, fatal: bool = False) -> None:
        self.problems.append(Problem(self.source, self.document, path, message, fatal))

    def mapping(self, value: Any, path: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            self.report(path, "must be a mapping with string keys; ignored")
            return {}
        return value

    def sequence(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.report(path, "must be a list; ignored")
            return []
        return value

    def string(self, value: Any, path: str, *, required: bool = False) -> str | None:
        if value is None or value == "":
            if required:
                self.report(path, "is required")
            return None
        if not isinstance(value, str):
            self.report(path, f"must be a string, got {type(value).__name__}")
            return None
        return value

    def number(self, value: Any, path: str) -> float | None:
        if value is None:
            self.report(path, "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.report(path, f"must be a finite number, got {value!r}")
            return None
        return float(value)

    def flag(self, value: Any, path: str) -> bool:
        if value is None:
            return False
        if not isinstance(value, bool):
            self.report(path, f"must be true or false, got {value!r}; taken as false")
            return False
        return value

    def unknown(self, value: dict[str, Any], path: str, known: Iterable[str]) -> None:
        for key in sorted(set(value) - set(known)):
            self.report(join(path, key), "unknown field; not imported")

    def labels(self, value: Any, path: str, reserved: Collection[str] = ()) -> dict[str, str]:
        """Prometheus labels; a label that is not valid, or that Observatory sets itself on every
        alert (`reserved`), is reported and left out."""
        labels = {}
        for key, text in self.mapping(value, path).items():
            if not re.fullmatch(LABEL_NAME_PATTERN, key) or key.startswith("__"):
                self.report(join(path, key), "is not a valid Prometheus label name; label not imported")
            elif key in reserved:
                self.report(join(path, key), "is set by Observatory on every alert of an SLO; label not imported")
            elif (checked := self.string(text, join(path, key))) is not None:
                labels[key] = checked
            elif text in (None, ""):
                self.report(join(path, key), "has no value; label not imported")
        return labels


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def percentage(value: float) -> float:
    """A percentage as people write it: 0.999 * 100 is 99.9, not 99.90000000000001."""
    return float(f"{value:.12g}")


def dns_name(reader: Reader, wanted: str, path: str) -> str | None:
    """`wanted` as a Kubernetes object name: lower case, other characters to `-`, shortened with a
    hash past the model's limit; anything beyond lower-casing is reported."""
    name = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", wanted.lower())).strip("-")
    name = shorten(name, MAX_NAME_LENGTH).strip("-")
    if not name:
        reader.report(path, f"{wanted!r} has no letters or digits to name an SLO with")
        return None
    if name != wanted.lower():
        reader.report(path, f"{wanted!r} is not a valid Kubernetes name; imported as {name!r}")
    return name


def namespace_problem(namespace: str | None) -> Problem | None:
    """A fatal problem if the --namespace flag is given and is not a namespace name."""
    if namespace is None:
        return None
    try:
        ObjectMeta.model_validate({"name": "x", "namespace": namespace})
    except ValidationError as err:
        return Problem("--namespace", 0, "", f"{namespace!r}: {err.errors()[0]['msg']}", fatal=True)
    return None


def window_problem(window: str) -> str | None:
    """Why `window` cannot be an Observatory SLO window, or None."""
    try:
        TypeAdapter(Duration).validate_python(window)
    except ValidationError as err:
        return err.errors()[0]["msg"].removeprefix("Value error, ")
    if not MIN_WINDOW_DAYS <= duration_seconds(window) / 86400 <= MAX_WINDOW_DAYS:
        return f"{window} is not between {MIN_WINDOW_DAYS}d and {MAX_WINDOW_DAYS}d, the SLO windows Observatory supports"
    return None


def slo_document(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "SLO", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


@dataclass
class Collector:
    """The imported SLOs, each checked as `observatory validate` would check it; names kept unique."""

    result: Result = field(default_factory=Result)
    _seen: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, reader: Reader, path: str, document: dict[str, Any]) -> None:
        metadata = document["metadata"]
        key = (metadata["namespace"], metadata["name"])
        where = f"{reader.source}: document {reader.document}: {path}"
        if key in self._seen:
            reader.report(path, f"SLO {key[1]} was already imported from {self._seen[key]}; SLO not imported")
            return
        try:
            compile_resource(parse_resource(document))
        except CompileError as err:
            for error in err.errors:
                reader.report(path, f"the imported SLO is not valid: {error}; SLO not imported")
            return
        self._seen[key] = where
        self.result.documents.append(document)
