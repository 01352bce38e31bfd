"""Reading resources from files, folders and stdin, and compiling them with every error reported."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, TextIO

from . import yamlio
from .compile import (
    CompileError,
    CompileOptions,
    assemble,
    contribution,
    plan_documents,
)
from .compile.slo_groups import groups_of
from .chartschema import chart_schemas
from .compile.dashboards import dashboard_objects
from .compile.stack import chart_ref
from .compile.stackclass import resolve_class
from .models import CLUSTER_SCOPED, parse_resource
from .models.common import API_VERSION, CustomResource
from .models.stack import ObservabilityStack
from .models.stackclass import COMPONENTS, ObservabilityStackClass

YAML_SUFFIXES = (".yaml", ".yml")
# Where a document without a namespace goes when none is given, as kubectl without a context namespace.
DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True)
class Document:
    source: str
    data: dict[str, Any]
    default_namespace: str | None = None

    @property
    def metadata(self) -> dict[str, Any]:
        metadata = self.data.get("metadata")
        return metadata if isinstance(metadata, dict) else {}  # a wrong type is reported by the model

    @property
    def identity(self) -> str:
        metadata = self.metadata
        if self.data.get("kind") in CLUSTER_SCOPED:
            return f"{self.data['kind']}/{metadata.get('name', '?')}"
        namespace = metadata.get("namespace") or self.default_namespace or "-"
        return f"{self.data.get('kind', '?')}/{namespace}/{metadata.get('name', '?')}"


@dataclass(frozen=True)
class Problem:
    source: str
    identity: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.identity}: {self.message}" if self.identity else f"{self.source}: {self.message}"


@dataclass
class Input:
    resources: list[tuple[Document, CustomResource]] = field(default_factory=list)
    promtool_tests: list[Path] = field(default_factory=list)
    skipped: list[Document] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Accepted, but probably not what was meant (`validate --strict` makes them problems).
    warnings: list[Problem] = field(default_factory=list)
    # ObservabilityStackClasses as written (name → document), invalid ones too: a stack of an invalid
    # class is refused saying so, as in the operator.
    classes: dict[str, dict[str, Any]] = field(default_factory=dict)


def _files(paths: Iterable[str]) -> Iterable[tuple[str, Path | None]]:
    for raw in paths:
        if raw == "-":
            yield "-", None
            continue
        path = Path(raw)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file()):
                yield str(child), child
        else:
            yield raw, path


def _read_bytes(path: Path | None, stdin: TextIO) -> bytes:
    limit = yamlio.MAX_FILE_BYTES + 1
    if path is not None:
        with path.open("rb") as stream:
            return stream.read(limit)
    buffer = getattr(stdin, "buffer", None)  # bytes as given; a test's StringIO has none
    return buffer.read(limit) if buffer is not None else stdin.read(limit).encode()


def read(paths: Iterable[str], default_namespace: str | None, stdin: TextIO = sys.stdin) -> Input:
    """Load every document; classify Observatory resources, promtool test files and the rest.

    Without a default_namespace, documents without one go to DEFAULT_NAMESPACE with a warning.
    """
    result = Input()
    namespace = default_namespace or DEFAULT_NAMESPACE
    for source, path in _files(paths):
        try:
            documents = yamlio.load_all(_read_bytes(path, stdin))
        except OSError as err:
            result.problems.append(Problem(source, "", f"cannot read: {err.strerror or err}"))
            continue
        except yamlio.BadYAML as err:
            result.problems.append(Problem(source, "", str(err)))
            continue
        for number, data in enumerate(documents, 1):
            if data is None:
                continue
            if not isinstance(data, dict):
                result.problems.append(Problem(source, "", f"document {number} is not a mapping (kubectl reads only "
                                                           "objects: apiVersion, kind, metadata, spec)"))
            elif "apiVersion" not in data and "tests" in data and path is not None:
                result.promtool_tests.append(path)
            elif "apiVersion" not in data:
                result.problems.append(Problem(source, Document(source, data, namespace).identity, (
                    f"apiVersion: not set; kubectl refuses an object without one: write apiVersion: {API_VERSION} "
                    "for an Observatory resource (a promtool test file has a top-level tests: list)")))
            elif str(data.get("apiVersion", "")).split("/")[0] != API_VERSION.split("/")[0]:
                result.skipped.append(Document(source, data))
            else:
                document = Document(source, data, namespace)
                if data.get("kind") == "ObservabilityStackClass":
                    result.classes.setdefault(str(document.metadata.get("name")), data)
                elif default_namespace is None and not document.metadata.get("namespace"):
                    result.warnings.append(Problem(source, document.identity, (
                        f"metadata.namespace: not set; using {DEFAULT_NAMESPACE} (kubectl apply would use its context's "
                        "namespace): set metadata.namespace or pass -n")))
                try:
                    result.resources.append((document, parse_resource(data, namespace)))
                except CompileError as err:
                    result.problems.extend(Problem(source, document.identity, str(e)) for e in err.errors)
    return result


def compile_all(loaded: Input, options: CompileOptions) -> list[dict[str, Any]]:
    """Compile everything loaded, recording a problem per failing field; objects only if none failed."""
    seen: dict[tuple[str, str, str], str] = {}
    objects: list[dict[str, Any]] = []
    members, documents = [], {}  # the SLOs' rules, and where each SLO was read
    for document, resource in loaded.resources:
        cluster_scoped = isinstance(resource, ObservabilityStackClass)
        key = (resource.kind, "" if cluster_scoped else resource.namespace, resource.name)
        if key in seen:
            loaded.problems.append(Problem(document.source, document.identity, f"defined twice (also in {seen[key]})"))
        seen.setdefault(key, document.source)
        if cluster_scoped:
            continue  # compiles to nothing of its own; the stacks of the class use it
        try:
            owned, member = contribution(resource, options)
            objects.extend(owned)
            if member is not None:
                members.append((resource, member))
                documents[(resource.namespace, resource.name)] = document
        except CompileError as err:
            loaded.problems.extend(Problem(document.source, document.identity, str(e)) for e in err.errors)
        if isinstance(resource, ObservabilityStack):
            try:
                stack_class = resolve_class(resource, loaded.classes)
                objects.extend(plan_documents(resource, options, stack_class, class_schemas(stack_class)))
                objects.extend(dashboard_objects(resource, options.conventions))
            except CompileError as err:
                loaded.problems.extend(Problem(document.source, document.identity, str(e)) for e in err.errors)
    for group in groups_of(members, options.conventions):
        for member in group.left_out:  # reported on each SLO that does not fit
            document = documents[(group.key[0], member.name)]
            loaded.problems.extend(Problem(document.source, document.identity, str(e)) for e in group.error().errors)
    if loaded.problems:
        return []
    return assemble(objects, [r for _, r in loaded.resources if not isinstance(r, ObservabilityStackClass)], options, members)


def class_schemas(stack_class: ObservabilityStackClass | None) -> dict[str, dict[str, Any]]:
    """Values schemas of the class's charts that are local files (the operator reads its own charts too)."""
    if stack_class is None:
        return {}
    return {c: chart_schemas(chart_ref(c, getattr(stack_class.spec, c).chart).path) for c in COMPONENTS}
