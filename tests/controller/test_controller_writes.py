"""What the Kubernetes adapter sends holds where the apiserver is strict: Event note size, and
shared objects written by two replicas at once."""

from __future__ import annotations

import threading

from controller_harness import EVENTS, PROMETHEUSRULES
from k8s.emulator import running_cluster
from observatory.compile import compile_resource
from observatory.compile.rules import is_part
from observatory.controller.kube import Kube, Owner
from observatory.conventions import Conventions
from observatory.models import parse_resource

# The apiserver limits an events.k8s.io/v1 note to 1 KiB in bytes (pkg/apis/core/validation/events.go,
# NoteLengthLimit = 1024, checked with len() of the Go string, i.e. UTF-8 bytes).
NOTE_LIMIT_BYTES = 1024


def slo(name: str, uid: str) -> dict:
    return {'apiVersion': 'observatory.dev/v1alpha1', 'kind': 'SLO',
            'metadata': {'name': name, 'namespace': 'team-a', 'uid': uid},
            'spec': {'objective': 99.5, 'indicator': {'llm': {'preset': 'availability'}}}}


def owner_of(body: dict) -> Owner:
    meta = body['metadata']
    return Owner(body['apiVersion'], body['kind'], meta['namespace'], meta['name'], meta['uid'])


def test_an_event_note_of_non_ascii_text_fits_the_apiservers_byte_limit():
    with running_cluster() as cluster:
        kube = Kube(cluster.api_client(), Conventions())
        owner = Owner('observatory.dev/v1alpha1', 'AlertRule', 'default', 'r', 'uid-1')
        note = 'helm: Ошибка установки релиза — ' * 100  # ~3 bytes a character
        kube.post_event(owner, 'Warning', 'HelmFailed', note)
        [event] = cluster.list(EVENTS, 'default')
        assert len(event['note'].encode()) <= NOTE_LIMIT_BYTES
        assert note.startswith(event['note'].removesuffix('…'))  # cut on a character boundary
        assert len(event['note'].encode()) > NOTE_LIMIT_BYTES - 8  # and no shorter than needed


def test_two_replicas_creating_one_shared_group_at_once_keep_both_parts():
    """Replica A reads the shared group (absent), replica B creates it with its SLO's part, then A
    writes: A must not replace B's owner and part (a create must fail when the object exists)."""
    with running_cluster() as cluster:
        cluster.seed({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': 'team-a'}})
        a, b = (Kube(cluster.api_client(), Conventions(), instance=i) for i in ('a', 'b'))
        # Two SLOs whose names hash into the same group of team-a.
        bodies = [slo(f'slo-{i}', f'uid-slo-{i}') for i in range(40)]
        parts = {body['metadata']['name']: next(o for o in compile_resource(parse_resource(body)) if is_part(o))
                 for body in bodies}
        by_group: dict[str, list[str]] = {}
        for name, part in parts.items():
            by_group.setdefault(part['metadata']['name'], []).append(name)
        first, second = next(names for names in by_group.values() if len(names) >= 2)[:2]
        group = parts[first]['metadata']['name']
        bodies = {body['metadata']['name']: body for body in bodies}

        read_by_a = a._get_named
        interleaved = threading.Event()

        def a_reads_then_b_writes(namespace, names):
            found = read_by_a(namespace, names)
            if not interleaved.is_set():
                interleaved.set()
                b.sync_shared(owner_of(bodies[second]), 'team-a', [parts[second]], [])
            return found

        a._get_named = a_reads_then_b_writes
        a.sync_shared(owner_of(bodies[first]), 'team-a', [parts[first]], [])

        live = cluster.get(PROMETHEUSRULES, group, 'team-a')
        assert interleaved.is_set()
        assert sorted(r['uid'] for r in live['metadata']['ownerReferences']) == sorted(
            [f'uid-{first}', f'uid-{second}'])
        slos = {rule['labels']['slo'] for g in live['spec']['groups'] for rule in g['rules'] if 'slo' in rule.get('labels', {})}
        assert slos == {first, second}
