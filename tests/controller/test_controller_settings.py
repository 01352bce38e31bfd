"""Operator settings come from the environment variables the chart's Deployment sets."""

from __future__ import annotations

import re

import pytest
from controller_harness import REPO
from observatory.controller.settings import Settings, SettingsError

# A valid non-default value for every variable the operator reads.
SAMPLES = {
    'OBSERVATORY_WATCH_NAMESPACES': 'team-b, team-a,team-a',
    'OBSERVATORY_RULE_SELECTOR_LABELS': '{"release": "prometheus", "team": "llm"}',
    'OBSERVATORY_TENANT_LABEL': 'tenant',
    'OBSERVATORY_LOG_FORMAT': 'plain',
    'OBSERVATORY_HEALTH_PORT': '8081',
    'OBSERVATORY_METRICS_PORT': '9091',
    'OBSERVATORY_PEERING_NAME': 'observatory-ha',
    'OBSERVATORY_RESYNC_SECONDS': '60',
    'OBSERVATORY_ALLOWED_EMAIL_SMARTHOSTS': 'smtp.example.com:587,mail.infra.svc:25',
    'OBSERVATORY_DASHBOARD_LABELS': '{"grafana_dashboard": "observatory"}',
}
# Read by the ObservabilityStack reconcile, not by these settings.
STACK_ONLY = re.compile(r'OBSERVATORY_\w+_CHART(_VERSION)?$')


def chart_env_names() -> set[str]:
    template = (REPO / 'charts' / 'observatory' / 'templates' / 'deployment.yaml').read_text()
    return set(re.findall(r'- name: (OBSERVATORY_[A-Z_]+)\s', template))


def test_every_variable_the_chart_sets_is_read():
    names = chart_env_names()
    assert 'OBSERVATORY_WATCH_NAMESPACES' in names
    for name in sorted(names):
        if STACK_ONLY.match(name):
            continue
        assert name in SAMPLES, f'{name} is set by the chart but unknown here'
        assert Settings.from_env({name: SAMPLES[name]}) != Settings(), f'{name} is ignored'


def test_values_are_parsed():
    settings = Settings.from_env(SAMPLES)
    assert settings.watch_namespaces == ('team-a', 'team-b') and not settings.clusterwide
    assert settings.conventions().rule_selector_labels == {'release': 'prometheus', 'team': 'llm'}
    assert settings.conventions().tenant_label == 'tenant'
    assert settings.conventions().dashboard_labels == {'grafana_dashboard': 'observatory'}
    assert (settings.health_port, settings.metrics_port, settings.peering_name) == (8081, 9091, 'observatory-ha')
    defaults = Settings.from_env({'OBSERVATORY_WATCH_NAMESPACES': ''})
    assert defaults.clusterwide and defaults.peering_name is None and defaults.log_format == 'json'


@pytest.mark.parametrize('name, value, message', [
    ('OBSERVATORY_RULE_SELECTOR_LABELS', '{release: x}', 'not JSON'),
    ('OBSERVATORY_RULE_SELECTOR_LABELS', '{"release": 1}', 'must be a JSON object of strings'),
    ('OBSERVATORY_DASHBOARD_LABELS', '["grafana_dashboard"]', 'must be a JSON object of strings'),
    ('OBSERVATORY_LOG_FORMAT', 'yaml', 'must be json or plain'),
    ('OBSERVATORY_HEALTH_PORT', '80a', 'must be a port number'),
    ('OBSERVATORY_METRICS_PORT', '70000', 'must be a port number'),
    ('OBSERVATORY_RESYNC_SECONDS', '0', 'must be positive'),
    ('OBSERVATORY_ALLOWED_EMAIL_SMARTHOSTS', 'smtp.example.com:587,smtp_x:25', "'smtp_x:25' is not host:port"),
])
def test_bad_values_name_the_variable(name, value, message):
    with pytest.raises(SettingsError, match=f'^{name}: {message}'):
        Settings.from_env({name: value})
