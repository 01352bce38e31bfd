"""AlertRules and SLOs reconciled into PrometheusRules and AlertmanagerConfigs in an (emulated) cluster."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

from controller_harness import (
    ALERTRULES,
    AMCONFIGS,
    EVENTS,
    PROMETHEUSRULES,
    SLOS,
    at_generation,
    condition,
    example,
    expected_objects,
    handled,
    names,
    running_operator,
    settled,
    threshold_rule,
)
from k8s.emulator import WRITE_METHODS, cluster_context
from observatory.compile.rules import count_rules
from observatory.compile.slo import slo_shard
from observatory.controller.app import build_controller
from observatory.controller.handled import HandledSpecs
from observatory.controller.handlers.alertrule import KIND as ALERTRULE
from observatory.controller.settings import Settings

WINDOWS_30D = 'observatory-slo-windows-30d'


def group_of(slo: str, period: str = '30d') -> str:
    return f'observatory-slos-{period}-{slo_shard(slo):02d}'
PRICES = 'observatory-llm-prices'


async def test_create_generates_owned_objects_with_rule_selector_labels():
    rule = example('alertrules/llm-error-rate.yaml')
    slo = example('slos/llm-availability.yaml')
    async with cluster_context() as cluster, running_operator(cluster):
        cluster.seed(rule)
        cluster.seed(slo)
        live_rule = await cluster.until(lambda: settled(cluster, ALERTRULES, 'llm-error-rate', 'team-a'))
        live_slo = await cluster.until(lambda: settled(cluster, SLOS, 'llm-availability', 'team-a'))
        for live, plural_kind in ((live_rule, 'alertrule'), (live_slo, 'slo')):
            contributed = list(expected_objects(live).values())
            shared = list(expected_objects(live, shared=True).values())
            name = f"{plural_kind}-{live['metadata']['name']}"
            reference = {'apiVersion': 'observatory.dev/v1alpha1', 'kind': live['kind'], 'name': live['metadata']['name'],
                         'uid': live['metadata']['uid']}
            controller = {'controller': True, 'blockOwnerDeletion': True}
            config = cluster.get(AMCONFIGS, name, 'team-a')
            assert config['metadata']['ownerReferences'] == [reference | controller]
            assert config['spec'] == next(o for o in contributed if o['kind'] == 'AlertmanagerConfig')['spec']
            # An AlertRule's rules are its own object; an SLO's are in a group of its namespace.
            if plural_kind == 'slo':
                assert not any(o['kind'] == 'PrometheusRule' for o in contributed)
                holding = next(o for o in shared if o['metadata']['name'] == group_of(live['metadata']['name']))
            else:
                holding = next(o for o in contributed if o['kind'] == 'PrometheusRule')
            prometheus_rule = cluster.get(PROMETHEUSRULES, holding['metadata']['name'], 'team-a')
            assert prometheus_rule['metadata']['ownerReferences'] == [reference | (controller if plural_kind == 'alertrule' else {})]
            assert prometheus_rule['metadata']['labels']['release'] == 'kube-prometheus-stack'
            assert prometheus_rule['spec'] == holding['spec']
            status = live['status']
            if plural_kind == 'slo':  # its own rules, beside its group's windows (one SLO: its alerts are its own)
                slo_name = live['metadata']['name']
                rules = [r for g in holding['spec']['groups'] for r in g['rules']]
                recording = sum(r.get('labels', {}).get('slo') == slo_name for r in rules if 'record' in r)
                alerting = sum(f'slo="{slo_name}"' in r['expr'] for r in rules if 'alert' in r)
            else:
                recording, alerting = count_rules([holding])
            assert (status['prometheusRules'], status['alertmanagerConfig']) == \
                (sorted(o['metadata']['name'] for o in contributed + shared if o['kind'] == 'PrometheusRule'), name)
            assert (status['recordingRules'], status['alertingRules']) == (recording, alerting)
            assert alerting > 0
            assert condition(live, 'Ready')['status'] == 'True'
            assert condition(live, 'Valid') | {'lastTransitionTime': None} == {
                'type': 'Valid', 'status': 'True', 'reason': 'Compiled', 'message': '',
                'observedGeneration': 1, 'lastTransitionTime': None}
            assert condition(live, 'RulesLoaded')['status'] == 'Unknown'


async def test_update_changes_the_rules_in_place_without_duplicates():
    async with cluster_context() as cluster, running_operator(cluster):
        cluster.seed(example('alertrules/llm-error-rate.yaml'))
        await cluster.until(lambda: settled(cluster, ALERTRULES, 'llm-error-rate', 'team-a'))
        before = cluster.get(PROMETHEUSRULES, 'alertrule-llm-error-rate', 'team-a')
        cluster.patch(ALERTRULES, 'llm-error-rate', 'team-a', {'spec': {'errorRate': {'threshold': 0.2}}})
        live = await cluster.until(lambda: at_generation(cluster, ALERTRULES, 'llm-error-rate', 'team-a', 2))
        after = cluster.get(PROMETHEUSRULES, 'alertrule-llm-error-rate', 'team-a')
        assert after['metadata']['uid'] == before['metadata']['uid']
        assert after['spec'] != before['spec']
        assert after['spec'] == expected_objects(live)['PrometheusRule/alertrule-llm-error-rate']['spec']
        assert names(cluster, PROMETHEUSRULES, 'team-a') == ['alertrule-llm-error-rate']
        assert names(cluster, AMCONFIGS, 'team-a') == ['alertrule-llm-error-rate']
        assert condition(live, 'Ready')['observedGeneration'] == 2


async def test_a_change_writes_only_the_status_into_the_resource_and_a_deletion_is_forgotten():
    # kopf remembers what it handled in the operator (controller/handled.py), not in an annotation:
    # no second write per change, no copy of the spec on the resource, nothing kept of a deleted one.
    memory = HandledSpecs()
    resources = ((ALERTRULES, example('alertrules/llm-error-rate.yaml')), (SLOS, example('slos/llm-availability.yaml')))
    async with cluster_context() as cluster, running_operator(cluster, handled=memory):
        for plural, obj in resources:
            cluster.seed(obj)
        cluster.patch(ALERTRULES, 'llm-error-rate', 'team-a', {'spec': {'errorRate': {'threshold': 0.2}}})

        await cluster.until(lambda: all(handled(cluster, plural, obj['metadata']['name'], 'team-a') for plural, obj in resources))
        for plural, obj in resources:
            name = obj['metadata']['name']
            live = cluster.get(plural, name, 'team-a')
            writes = [r for r in cluster.requests if r.method in WRITE_METHODS and r.resource is not None
                      and r.resource.plural == plural.rsplit('/', 1)[1] and r.name == name]
            assert writes and all(r.subresource == 'status' for r in writes), [(r.method, r.subresource) for r in writes]
            assert not any(key.startswith('observatory.dev/') for key in live['metadata'].get('annotations') or {})
        assert len(memory) == 2
        for plural, obj in resources:
            cluster.delete(plural, obj['metadata']['name'], 'team-a')
        await cluster.until(lambda: len(memory) == 0)


async def test_objects_no_longer_generated_are_pruned_and_others_left_alone():
    # Handlers read what the status names; the resync lists by owner labels and finds the rest.
    # A garbage collector that has not got round to it yet: the foreign object below stays.
    async with cluster_context(controller_delay=3600) as cluster, running_operator(cluster, Settings(resync_seconds=0.3)):
        cluster.seed(example('alertrules/llm-error-rate.yaml'))
        live = await cluster.until(lambda: settled(cluster, ALERTRULES, 'llm-error-rate', 'team-a'))
        rule = cluster.get(PROMETHEUSRULES, 'alertrule-llm-error-rate', 'team-a')
        rule['metadata'] = {k: rule['metadata'][k] for k in ('name', 'namespace', 'labels', 'annotations', 'ownerReferences')}
        # As if an earlier, larger spec had been split into a second object.
        cluster.seed({**rule, 'metadata': {**rule['metadata'], 'name': 'alertrule-llm-error-rate-2'}})
        # Same labels, but another owner (a deleted namesake awaiting the garbage collector): not ours.
        foreign_ref = {**rule['metadata']['ownerReferences'][0], 'uid': 'another-uid'}
        cluster.seed({**rule, 'metadata': {**rule['metadata'], 'name': 'alertrule-llm-error-rate-3',
                                           'ownerReferences': [foreign_ref]}})
        cluster.patch(ALERTRULES, 'llm-error-rate', 'team-a', {'spec': {'routing': None}})
        live = await cluster.until(lambda: at_generation(cluster, ALERTRULES, 'llm-error-rate', 'team-a', 2))
        await cluster.until(lambda: 'alertrule-llm-error-rate-2' not in names(cluster, PROMETHEUSRULES, 'team-a'))
        assert names(cluster, PROMETHEUSRULES, 'team-a') == ['alertrule-llm-error-rate', 'alertrule-llm-error-rate-3']
        assert names(cluster, AMCONFIGS, 'team-a') == []
        assert 'alertmanagerConfig' not in live['status']
        assert live['status']['prometheusRules'] == ['alertrule-llm-error-rate']


async def test_delete_and_rename_leave_nothing_behind():
    async with cluster_context() as cluster, running_operator(cluster):
        cluster.seed(example('slos/llm-availability.yaml'))
        # Deleting while kopf still finishes the creation can re-apply the objects after the owner is
        # gone; a real garbage collector deletes such orphans, the emulator's only collects on delete.
        await cluster.until(lambda: handled(cluster, SLOS, 'llm-availability', 'team-a'))
        # A rename is a new resource and the deletion of the old one.
        cluster.seed(example('slos/llm-availability.yaml', name='chat-availability'))
        cluster.delete(SLOS, 'llm-availability', 'team-a')
        await cluster.until(lambda: settled(cluster, SLOS, 'chat-availability', 'team-a'))
        # The old name's rules leave the group (which may be the same group) with it; the garbage
        # collector, which runs on its own, deletes its AlertmanagerConfig.
        await cluster.until(lambda: names(cluster, PROMETHEUSRULES, 'team-a') == [WINDOWS_30D, group_of('chat-availability')]
                            and owners_of(cluster, group_of('chat-availability')) == ['chat-availability']
                            and 'llm-availability' not in json.dumps(cluster.get(PROMETHEUSRULES, group_of('chat-availability'), 'team-a'))
                            and names(cluster, AMCONFIGS, 'team-a') == ['slo-chat-availability'])
        cluster.delete(SLOS, 'chat-availability', 'team-a')
        await cluster.until(lambda: not names(cluster, PROMETHEUSRULES, 'team-a') and not names(cluster, AMCONFIGS, 'team-a'))


async def test_invalid_spec_reports_the_field_writes_nothing_and_recovers_when_fixed():
    good, bad = 'sum(rate(llm_calls_total[5m]))', 'up{namespace="kube-system"}'
    async with cluster_context() as cluster, running_operator(cluster) as controller:
        cluster.seed(threshold_rule('calls', good))
        await cluster.until(lambda: handled(cluster, ALERTRULES, 'calls', 'team-a'))
        last_good = cluster.get(PROMETHEUSRULES, 'alertrule-calls', 'team-a')
        cluster.clear_requests()
        cluster.patch(ALERTRULES, 'calls', 'team-a', {'spec': {'threshold': {'expr': bad}}})
        live = await cluster.until(lambda: (obj := handled(cluster, ALERTRULES, 'calls', 'team-a')) and
                                   obj['metadata']['generation'] == 2 and obj)
        valid, ready = condition(live, 'Valid'), condition(live, 'Ready')
        assert (valid['status'], valid['reason'], ready['status'], ready['reason']) == ('False', 'InvalidSpec', 'False', 'InvalidSpec')
        assert valid['message'].startswith('spec.threshold.expr: ') and 'own namespace' in valid['message']
        assert live['status']['prometheusRules'] == ['alertrule-calls']  # the last good one, still there
        # No retry loop: after the status and one event, nothing more is written.
        await asyncio.sleep(1.0)
        assert cluster.write_counts() == {'alertrules/status': 1, 'events': 1}
        assert cluster.get(PROMETHEUSRULES, 'alertrule-calls', 'team-a') == last_good
        assert controller.metrics.registry.get_sample_value(
            'observatory_reconcile_total', {'kind': 'AlertRule', 'result': 'invalid'}) == 1
        warning = [e for e in cluster.list(EVENTS, 'team-a') if e['reason'] == 'InvalidSpec' and e['type'] == 'Warning']
        assert any('spec.threshold.expr' in e['note'] for e in warning)

        cluster.patch(ALERTRULES, 'calls', 'team-a', {'spec': {'threshold': {'expr': 'sum(rate(llm_calls_total[10m]))'}}})
        live = await cluster.until(lambda: at_generation(cluster, ALERTRULES, 'calls', 'team-a', 3))
        assert condition(live, 'Valid')['status'] == condition(live, 'Ready')['status'] == 'True'
        assert '10m' in json.dumps(cluster.get(PROMETHEUSRULES, 'alertrule-calls', 'team-a')['spec'])


async def test_invalid_from_the_start_generates_nothing():
    async with cluster_context() as cluster, running_operator(cluster):
        cluster.seed(threshold_rule('calls', 'sum(rate(x[5m])'))
        live = await cluster.until(lambda: settled(cluster, ALERTRULES, 'calls', 'team-a'))
        assert condition(live, 'Valid')['status'] == 'False'
        assert 'invalid PromQL' in condition(live, 'Valid')['message']
        assert live['status']['prometheusRules'] == []
        assert names(cluster, PROMETHEUSRULES, 'team-a') == []


def owners_of(cluster: Any, name: str) -> list[str]:
    shared = cluster.get(PROMETHEUSRULES, name, 'team-a')
    return sorted(r['name'] for r in shared['metadata']['ownerReferences']) if shared else []


async def test_slo_windows_are_shared_per_period_and_follow_a_changed_period():
    async with cluster_context() as cluster, running_operator(cluster):
        cluster.seed(example('slos/llm-availability.yaml'))
        cluster.seed(example('slos/llm-availability.yaml', name='chat-availability'))
        await cluster.until(lambda: owners_of(cluster, WINDOWS_30D) == ['chat-availability', 'llm-availability'])
        cluster.patch(SLOS, 'chat-availability', 'team-a', {'spec': {'window': '7d'}})
        await cluster.until(lambda: owners_of(cluster, WINDOWS_30D) == ['llm-availability'])
        await cluster.until(lambda: owners_of(cluster, 'observatory-slo-windows-7d') == ['chat-availability'])
        expected = expected_objects(cluster.get(SLOS, 'chat-availability', 'team-a'), shared=True)
        assert cluster.get(PROMETHEUSRULES, 'observatory-slo-windows-7d', 'team-a')['spec'] == \
            expected['PrometheusRule/observatory-slo-windows-7d']['spec']
        cluster.delete(SLOS, 'llm-availability', 'team-a')
        await cluster.until(lambda: cluster.get(PROMETHEUSRULES, WINDOWS_30D, 'team-a') is None)


async def test_shared_price_catalogue_is_owned_by_each_cost_rule_and_goes_with_the_last():
    async with cluster_context() as cluster, running_operator(cluster):
        cluster.seed(example('alertrules/llm-daily-budget.yaml'))
        cluster.seed(example('alertrules/llm-hourly-budget.yaml'))
        await cluster.until(lambda: owners_of(cluster, PRICES) == ['llm-daily-budget', 'llm-hourly-budget'])
        prices = cluster.get(PROMETHEUSRULES, 'observatory-llm-prices', 'team-a')
        assert not any(r.get('controller') for r in prices['metadata']['ownerReferences'])
        assert prices['metadata']['labels']['release'] == 'kube-prometheus-stack'
        # A rule that stops being a cost rule lets go of the catalogue.
        cluster.patch(ALERTRULES, 'llm-hourly-budget', 'team-a',
                      {'spec': {'cost': None, 'groupBy': None, 'errorRate': {'threshold': 0.1}}})
        await cluster.until(lambda: owners_of(cluster, PRICES) == ['llm-daily-budget'])
        cluster.delete(ALERTRULES, 'llm-daily-budget', 'team-a')
        await cluster.until(lambda: cluster.get(PROMETHEUSRULES, 'observatory-llm-prices', 'team-a') is None)


async def reconcile_a_change_from_a_stale_body(cluster: Any, example_file: str, name: str, change: dict[str, Any],
                                              after_first: Callable[[], None]) -> None:
    """kopf hands a handler the latest event it has, which can predate the status the previous
    reconcile wrote: the AlertRule of `example_file` is `change`d while its creation is reconciled
    (`after_first` checks that reconcile), and the change is handed over as its event had it,
    without the status written since."""
    api_client = cluster.api_client()
    try:
        controller = build_controller(api_client, Settings())
        cluster.seed(example(example_file))
        created = cluster.get(ALERTRULES, name, 'team-a')
        changed = cluster.patch(ALERTRULES, name, 'team-a', {'spec': change})
        await asyncio.to_thread(controller.reconcile, ALERTRULE, created)
        after_first()
        assert 'status' not in changed
        await asyncio.to_thread(controller.reconcile, ALERTRULE, changed)
    finally:
        api_client.close()


async def test_a_body_older_than_the_status_its_last_reconcile_wrote_still_leaves_the_catalogue():
    """A cost rule changed right after its creation was handed its new spec without a status, so it
    never left the price catalogue."""
    async with cluster_context() as cluster:
        def owns_the_catalogue() -> None:
            assert owners_of(cluster, PRICES) == ['llm-hourly-budget']

        await reconcile_a_change_from_a_stale_body(
            cluster, 'alertrules/llm-hourly-budget.yaml', 'llm-hourly-budget',
            {'cost': None, 'groupBy': None, 'errorRate': {'threshold': 0.1}}, owns_the_catalogue)
        assert cluster.get(PROMETHEUSRULES, PRICES, 'team-a') is None
        assert names(cluster, PROMETHEUSRULES, 'team-a') == ['alertrule-llm-hourly-budget']


def names_its_config(cluster: Any) -> None:
    status = cluster.get(ALERTRULES, 'llm-error-rate', 'team-a')['status']
    assert status['alertmanagerConfig'] == 'alertrule-llm-error-rate'


async def test_a_body_older_than_the_status_its_last_reconcile_wrote_gets_no_stale_status_key():
    """The same race for the status itself: the routing removed, the new status has no
    AlertmanagerConfig, but a merge patch computed against the older body's status (none) does not
    remove the key the last reconcile wrote, and the status keeps naming a deleted object."""
    async with cluster_context() as cluster:
        await reconcile_a_change_from_a_stale_body(
            cluster, 'alertrules/llm-error-rate.yaml', 'llm-error-rate', {'routing': None}, lambda: names_its_config(cluster))
        assert names(cluster, AMCONFIGS, 'team-a') == []
        status = cluster.get(ALERTRULES, 'llm-error-rate', 'team-a')['status']
        assert 'alertmanagerConfig' not in status
        assert condition({'status': status}, 'Ready')['message'].endswith('PrometheusRule(s)')


async def test_a_stale_body_with_an_invalid_spec_keeps_the_status_of_the_last_good_rules():
    """An invalid spec keeps the last good objects and the status naming them: those of the last
    write, not of the older body (which names none), and no second Event for conditions unchanged."""
    async with cluster_context() as cluster:
        await reconcile_a_change_from_a_stale_body(
            cluster, 'alertrules/llm-error-rate.yaml', 'llm-error-rate',
            {'errorRate': None, 'threshold': {'expr': 'up{namespace="kube-system"}', 'value': 1}},
            lambda: names_its_config(cluster))
        live = cluster.get(ALERTRULES, 'llm-error-rate', 'team-a')
        assert condition(live, 'Valid')['reason'] == 'InvalidSpec'
        assert (live['status']['alertmanagerConfig'], live['status']['prometheusRules']) == \
            ('alertrule-llm-error-rate', ['alertrule-llm-error-rate'])
        assert names(cluster, AMCONFIGS, 'team-a') == ['alertrule-llm-error-rate']
        reasons = [e['reason'] for e in cluster.list(EVENTS, 'team-a')]
        assert reasons.count('Reconciled') == 1 and reasons.count('InvalidSpec') == 1


def parts_in(cluster: Any, name: str) -> list[str]:
    """The SLOs with rules in a PrometheusRule, in the order of its rules."""
    obj = cluster.get(PROMETHEUSRULES, name, 'team-a')
    return list(dict.fromkeys(r['labels']['slo'] for g in obj['spec']['groups'] for r in g['rules'] if 'slo' in r['labels'])) if obj else []


async def test_slos_sharing_a_group_each_write_their_part_and_take_it_along_when_deleted():
    """Also when deleted while no operator runs: the garbage collector only drops the owner, the
    next write of the group drops the part of an owner gone."""
    first, second, third = 'svc-104-availability', 'svc-113-availability', 'svc-132-availability'
    group = group_of(first)
    assert group_of(second) == group_of(third) == group

    def compiled(*slo_names: str) -> dict[str, Any]:
        from observatory.compile import compile_bundle
        from observatory.models import parse_resource
        slos = [parse_resource(example('slos/llm-availability.yaml', name=n)) for n in slo_names]
        return next(o for o in compile_bundle(slos) if o['metadata']['name'] == group)['spec']

    # The garbage collector runs freely: its removal of the deleted SLO's owner reference races the
    # operator's take-along write of the part, which re-reads the group on the 409 and writes again.
    async with cluster_context() as cluster:
        async with running_operator(cluster):
            for name in (third, first, second):
                cluster.seed(example('slos/llm-availability.yaml', name=name))
            await cluster.until(lambda: parts_in(cluster, group) == [first, second, third])
            assert cluster.get(PROMETHEUSRULES, group, 'team-a')['spec'] == compiled(first, second, third)
            # The parts land before each SLO reports its status: wait for the status, never assume it.
            live = await cluster.until(lambda: settled(cluster, SLOS, second, 'team-a'))
            assert live['status']['prometheusRules'] == [WINDOWS_30D, group]
            cluster.delete(SLOS, first, 'team-a')
            await cluster.until(lambda: parts_in(cluster, group) == [second, third])
            assert owners_of(cluster, group) == [second, third]
        cluster.delete(SLOS, second, 'team-a')
        await cluster.until(lambda: owners_of(cluster, group) == [third])  # the garbage collector drops the owner
        assert parts_in(cluster, group) == [second, third]
        async with running_operator(cluster):
            await cluster.until(lambda: parts_in(cluster, group) == [third])
            assert cluster.get(PROMETHEUSRULES, group, 'team-a')['spec'] == compiled(third)


FIRST_IN, SECOND_IN, LEFT_OUT = 'svc-104-availability', 'svc-113-availability', 'svc-132-availability'


async def fill_the_group_and_leave_one_out(cluster: Any, monkeypatch: Any) -> dict[str, Any]:
    """Three SLOs of one group, room for two: the third is left out; its body once handled."""
    # The group with two of these SLOs fits in 13 KiB (12.1 KiB), with three it does not (13.5 KiB): the limit
    # stands in for prometheus-operator's 512 KiB.
    monkeypatch.setattr('observatory.compile.slo_groups.MAX_RULE_OBJECT_BYTES', 13 * 1024)
    for name in (FIRST_IN, SECOND_IN):
        cluster.seed(example('slos/llm-availability.yaml', name=name))
    await cluster.until(lambda: parts_in(cluster, group_of(FIRST_IN)) == [FIRST_IN, SECOND_IN])
    cluster.seed(example('slos/llm-availability.yaml', name=LEFT_OUT))
    return await cluster.until(lambda: handled(cluster, SLOS, LEFT_OUT, 'team-a'))  # its Event posted too


async def test_an_slo_without_room_in_its_group_is_reported_and_admitted_once_there_is(monkeypatch):
    first, second, third = FIRST_IN, SECOND_IN, LEFT_OUT
    group = group_of(first)
    async with cluster_context() as cluster, running_operator(cluster) as controller:
        live = await fill_the_group_and_leave_one_out(cluster, monkeypatch)
        ready = condition(live, 'Ready')
        assert (ready['status'], ready['reason'], condition(live, 'Valid')['status']) == ('False', 'RuleGroupFull', 'True')
        assert ready['message'] == (f'metadata.namespace: PrometheusRule {group} would hold the rules of 3 SLOs, more than '
                                    f'the 13 KiB prometheus-operator accepts in one rule file; left out: {third}; move some '
                                    'to another namespace')
        assert (parts_in(cluster, group), owners_of(cluster, group)) == ([first, second], [first, second])
        # The result is counted once the reconcile returns, after its status write.
        await cluster.until(lambda: controller.metrics.registry.get_sample_value(
            'observatory_reconcile_total', {'kind': 'SLO', 'result': 'full'}) == 1)
        # Once another SLO leaves, the group, computed whole again, has room for it (the oldest stay
        # first in line), and its status says so at once.
        cluster.delete(SLOS, first, 'team-a')
        await cluster.until(lambda: parts_in(cluster, group) == [second, third] and owners_of(cluster, group) == [second, third])
        await cluster.until(lambda: condition(cluster.get(SLOS, third, 'team-a'), 'Ready')['status'] == 'True')
        assert group in cluster.get(SLOS, third, 'team-a')['status']['prometheusRules']


class HeldTurn:
    """A resource's turn (`Controller._turn`), held by the test until `release`, that counts who
    waits for it."""

    def __init__(self) -> None:
        self.lock, self.waiting, self.held = threading.Lock(), 0, True
        self.lock.acquire()

    def release(self) -> None:
        if self.held:
            self.held = False
            self.lock.release()

    def __enter__(self) -> None:
        self.waiting += 1
        self.lock.acquire()

    def __exit__(self, *_: object) -> None:
        self.lock.release()


@contextlib.contextmanager
def holding_the_turn(controller: Any, uid: str) -> Iterator[HeldTurn]:
    turn = controller._turns[uid] = HeldTurn()
    try:
        yield turn
    finally:
        turn.release()  # a failing test must not leave the operator's threads waiting for ever


async def test_an_slo_deleted_while_its_admission_is_reported_writes_nothing_and_is_forgotten(monkeypatch):
    """The SLO a deletion lets into its full group is reconciled again in its turn: deleted while
    that reconcile waited for its turn, it was reconciled from a body read before the deletion,
    writing for a resource gone and, after its own deletion was handled, keeping memories of it."""
    async with cluster_context() as cluster, running_operator(cluster) as controller:
        left_out = await fill_the_group_and_leave_one_out(cluster, monkeypatch)
        forgotten = {FIRST_IN: threading.Event(), LEFT_OUT: threading.Event()}
        forget = controller.forget

        def forget_and_tell(kind: Any, body: dict[str, Any]) -> None:
            forget(kind, body)  # for FIRST_IN, it reports the admission it made before it returns
            forgotten[body['metadata']['name']].set()

        controller.forget = forget_and_tell
        with holding_the_turn(controller, left_out['metadata']['uid']) as turn:
            cluster.delete(SLOS, FIRST_IN, 'team-a')
            await cluster.until(lambda: turn.waiting == 1)  # the admission's report
            deleted_at = len(cluster.requests)
            cluster.delete(SLOS, LEFT_OUT, 'team-a')
            await cluster.until(lambda: turn.waiting == 2)  # its deletion's; either may go first
        await cluster.until(lambda: all(e.is_set() for e in forgotten.values()))
        assert parts_in(cluster, group_of(FIRST_IN)) == [SECOND_IN]
        assert [(r.method, r.resource.plural, r.name, r.subresource) for r in cluster.requests[deleted_at:]
                if r.method in WRITE_METHODS and r.resource is not None and r.resource.plural != 'prometheusrules'] == []
        assert left_out['metadata']['uid'] not in controller._left_with  # nothing kept of it


async def test_an_admission_is_reported_to_the_new_namesake_of_an_slo_not_yet_forgotten(monkeypatch):
    """An SLO deleted and created again under its name is two resources until the first one's
    deletion is handled: the report of an admission must reach the new one at once, not wait for
    (or stop at) the first one."""
    async with cluster_context() as cluster, running_operator(cluster) as controller:
        deleted = await fill_the_group_and_leave_one_out(cluster, monkeypatch)
        with holding_the_turn(controller, deleted['metadata']['uid']) as turn:  # its deletion waits
            cluster.delete(SLOS, LEFT_OUT, 'team-a')
            await cluster.until(lambda: turn.waiting == 1)
            cluster.seed(example('slos/llm-availability.yaml', name=LEFT_OUT))
            again = await cluster.until(lambda: settled(cluster, SLOS, LEFT_OUT, 'team-a'))
            assert again['metadata']['uid'] != deleted['metadata']['uid']
            assert condition(again, 'Ready')['reason'] == 'RuleGroupFull'
            cluster.delete(SLOS, FIRST_IN, 'team-a')
            await cluster.until(lambda: parts_in(cluster, group_of(FIRST_IN)) == [SECOND_IN, LEFT_OUT])
            await cluster.until(lambda: condition(cluster.get(SLOS, LEFT_OUT, 'team-a'), 'Ready')['status'] == 'True')
        await cluster.until(lambda: deleted['metadata']['uid'] not in controller._left_with)
