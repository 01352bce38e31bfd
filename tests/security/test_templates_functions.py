"""Issue 13 item 2: the verdict on every template function, and the template grammar against promtool.

Prometheus parses the labels and annotations of every alerting rule when it loads a rule file
(prometheus model/rulefmt/rulefmt.go, testTemplateParsing: text/template with Prometheus' function
map, after the `$labels`/`$externalLabels`/`$externalURL`/`$value` declarations), so `promtool check
rules` is the judge of what parses and of which functions exist; `promtool test rules` of what an
allowed template renders.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from observatory.compile import compile_bundle
from observatory.compile.templates import FUNCTIONS, TemplateError, check
from observatory.models import parse_resource
from observatory.promtool import run_test_file, write_rule_files
from observatory.yamlio import dump

# prometheus template/template.go, NewTemplateExpander's FuncMap (v2.42.0 and main at d15adb9, 2026-08),
# plus Go's text/template builtins (text/template/funcs.go) and `tmpl`, which Prometheus adds for
# console templates only. A function added upstream is refused (unknown) until it is listed here.
ALLOWED, REFUSED = "allowed", "refused"
VERDICTS = {
    # Go text/template builtins
    "and": ALLOWED, "or": ALLOWED, "not": ALLOWED, "eq": ALLOWED, "ne": ALLOWED, "lt": ALLOWED, "le": ALLOWED,
    "gt": ALLOWED, "ge": ALLOWED, "len": ALLOWED, "index": ALLOWED, "slice": ALLOWED, "print": ALLOWED,
    "printf": ALLOWED, "println": ALLOWED, "html": ALLOWED, "js": ALLOWED, "urlquery": ALLOWED, "call": REFUSED,
    # Prometheus: the TSDB and what works on its results
    "query": REFUSED, "first": REFUSED, "label": REFUSED, "value": REFUSED, "strvalue": REFUSED, "sortByLabel": REFUSED,
    "graphLink": REFUSED, "tableLink": REFUSED, "tmpl": REFUSED,
    # Prometheus: formatting of the alert's own labels and value
    "args": ALLOWED, "reReplaceAll": ALLOWED, "safeHtml": ALLOWED, "match": ALLOWED, "title": ALLOWED,
    "toUpper": ALLOWED, "toLower": ALLOWED, "stripPort": ALLOWED, "stripDomain": ALLOWED, "humanize": ALLOWED,
    "humanize1024": ALLOWED, "humanizeDuration": ALLOWED, "humanizePercentage": ALLOWED,
    "humanizeTimestamp": ALLOWED, "toTime": ALLOWED, "toDuration": ALLOWED, "now": ALLOWED,
    "pathPrefix": ALLOWED, "externalURL": ALLOWED, "parseDuration": ALLOWED, "urlQueryEscape": ALLOWED,
}
# In main but not in the Prometheus 2.42 promtool here, and `tmpl`, never in alert templates.
NOT_IN_PROMTOOL = {"toDuration", "now", "urlQueryEscape", "tmpl"}


def promtool_check(templates: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """promtool check rules on one alert per template (its label `t`): the error by alert name."""
    rules = [{"alert": name, "expr": "vector(1)", "labels": {"t": text}} for name, text in templates.items()]
    path = tmp_path / "templates.rules.yaml"
    path.write_text(dump({"groups": [{"name": "templates", "rules": rules}]}))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False)
    errors = dict(re.findall(r'rule \d+, "(\w+)": label "t": (.*)', result.stdout + result.stderr))
    assert (result.returncode == 0) == (not errors), result.stdout + result.stderr
    return errors


def test_every_prometheus_and_go_template_function_has_a_verdict():
    assert {name: ALLOWED if reason is None else REFUSED for name, reason in FUNCTIONS.items()} == VERDICTS


def test_the_listed_functions_are_the_ones_promtool_knows(promtool, tmp_path):
    """Probing each name (unexecuted, parsed only): promtool defines every listed function but the
    newer ones, and the probe tells a missing function apart."""
    names = [*VERDICTS, "notAFunction"]
    errors = promtool_check({f"F{i}": f"{{{{ if false }}}}{{{{ {name} }}}}{{{{ end }}}}" for i, name in enumerate(names)},
                            tmp_path)
    undefined = {names[int(alert[1:])] for alert, error in errors.items() if "not defined" in error}
    assert undefined == NOT_IN_PROMTOOL | {"notAFunction"}, errors


def test_every_refused_function_is_refused_in_every_position():
    for name in (n for n, verdict in VERDICTS.items() if verdict == REFUSED):
        for text in (f"{{{{ {name} }}}}", f'{{{{ "x" | {name} }}}}', f"{{{{ printf \"%v\" ({name} 1) }}}}",
                     f"{{{{ if true }}}}{{{{ else }}}}{{{{ $x := {name} }}}}{{{{ end }}}}", f"{{{{- {name} -}}}}"):
            with pytest.raises(TemplateError, match=f"`{name}`"):
                check(text)


# Accepted by the checker; promtool must parse every one (a template Prometheus cannot parse fails
# the whole rule file).
ACCEPTED = [
    "plain text, no action",
    "{{ $value }}", "{{ $value | humanize }}", "{{ $labels.gen_ai_request_model }}", "{{ .Labels.namespace }}",
    "{{ $externalLabels.cluster }} {{ $externalURL }} {{ .ExternalURL }} {{ $ }}",
    '{{ printf "%.2f" $value }}', "{{ printf `%5.1f%%` .Value }}", '{{ printf "%s/%d" "a" 1 }}',
    '{{ if gt $value 0.5 }}high{{ else if gt $value 0.1 }}mid{{ else }}low{{ end }}',
    "{{ with $labels.model }}{{ . | toUpper }}{{ end }}",
    "{{ range $name, $v := $labels }}{{ $name }}={{ $v }} {{ end }}", "{{ range .Labels }}{{ . }}{{ break }}{{ end }}",
    '{{ reReplaceAll "(.*)-(.*)" "$2" $labels.pod }}', '{{ if match "^gpt" $labels.m }}GPT{{ end }}',
    "{{ $value | humanizePercentage }} {{ $value | humanizeDuration }} {{ humanize1024 $value }}",
    '{{ $x := 1 }}{{ $x = 2 }}{{ $x }}', '{{ index $labels "a" }} {{ len $labels }} {{ slice "abc" 1 2 }}',
    "{{/* a comment */}}x{{- /* trimmed */ -}} y", '{{ "}} {{ query" }}', "{{ `{{ query \"up\" }}` }}",
    '{{ eq $labels.a "b" "c" }} {{ and true false }} {{ or nil 1 }} {{ not false }}',
    "{{ -1.5e3 }} {{ 0x1F }} {{ .5 }} {{ +2 }}", '{{ "tab\\tnew\\nline\\x41\\u00e9\\101" }}',
    "{{ (humanize $value) }}", "{{\n$value\n|\nhumanize\n}}", "{{ toTime $value }} {{ parseDuration \"1h\" }}",
    '{{ stripPort "a:1" }} {{ stripDomain "a.b:1" }} {{ title "x" }} {{ toLower "X" }} {{ safeHtml "<b>" }}',
    '{{ args 1 2 }} {{ pathPrefix }} {{ externalURL }} {{ html "<" }} {{ js "x" }} {{ urlquery "a b" }}',
    '{{ js $labels.x }} {{ printf "%s" (toUpper $labels.a) }} {{ reReplaceAll "a" "b" (toLower $labels.x) }}',
    '{{ $v := $value | humanize }}{{ $v }} {{ toUpper (html (js $labels.x)) }} {{ with $labels.a }}{{ js . }}{{ end }}',
]


def test_accepted_templates_parse_in_promtool(promtool, tmp_path):
    for text in ACCEPTED:
        check(text)
    assert promtool_check({f"A{i}": text for i, text in enumerate(ACCEPTED)}, tmp_path) == {}


# Refused by the checker, with the reason; the ones marked True promtool refuses as well (the others
# parse in Go and fail, loop or bloat only when Prometheus expands them, or are simply left out).
REFUSALS = [
    ('{{ template "x" }}', "named templates", False), ('{{ define "x" }}y{{ end }}', "named templates", False),
    ('{{ block "x" . }}y{{ end }}', "named templates", False),
    ('{{ printf "%1000000d" 1 }}', "widths and precisions above 100", False),
    ('{{ printf "%.999s" "x" }}', "widths and precisions above 100", False),
    ('{{ printf "%*d" 100000 1 }}', "without * or [n]", False), ('{{ printf $labels.fmt 1 }}', "literal string", False),
    ('{{ "%d" | printf }}', "literal string", False),
    ("{{ range $labels }}{{ range $labels }}x{{ end }}{{ end }}", "inside another {{range}}", False),
    ("{{ range 1000000000 }}x{{ end }}", "only a variable or field", False),
    ('{{ range $k, $v := split "a" }}{{ end }}', "not a Prometheus template function", True),
    ("{{ unknownFunction }}", "not a Prometheus template function", True),
    ("{{ $undefined }}", "undefined variable $undefined", True), ("{{ end }}", "unexpected {{end}}", True),
    ("{{ if true }}x", "{{if}} without {{end}}", True), ("{{ if }}{{ end }}", "missing value for if", True),
    ("{{ else }}", "{{else}} outside", True), ("{{ break }}", "outside {{range}}", True),
    ('{{query"up"}}', "bad character", True), ("{{ $value ", "unclosed action", True),
    ("{{ (humanize $value }}", "unclosed left paren", True), ("{{ humanize $value) }}", "unexpected right paren", True),
    ('{{ "unterminated }}', "unterminated string", True), ('{{ "\\q" }}', "bad escape", True),
    ("{{ /* comment */ }}", "unrecognized character", True), ("{{/* comment */ x }}", "comment ends before", True),
    ("{{-query \"up\"}}", "bad number", True), ("{{ 1x }}", "bad number", True), ("{{ $value | }}", "missing command", False),
    ("{{ nil }}", "unexpected 'nil'", False), ("{{ if true }}{{ else range $labels }}{{ end }}", "after else", True),
    ("{{ $a, $b := $labels }}", "bad declaration", True), ("{{ 'x' }}", "character constants", False),
    ("{{ a := 1 }}", "bad declaration", True), ('{{ $value | "x" }}', "is a value, not a command", True),
    ("{{ if true }}{{ else with $labels }}{{ end }}", "after else", False),
    # Output that grows exponentially with the template's length.
    ('{{ js (js "\\\\") }}', "grows exponentially", False), ('{{ "x" | printf "%x" | printf "%x" }}', "grows exponentially", False),
    ('{{ reReplaceAll "" "ab" (reReplaceAll "" "ab" "x") }}', "grows exponentially", False),
    ('{{ printf "%q" (js $labels.x) }}', "grows exponentially", False),
    ('{{ printf "%s" (toUpper (js $labels.x)) | js }}', "grows exponentially", False),
    ('{{ $a := print "xx" "xx" }}{{ $b := print $a $a }}', "may hold only", False),
    ('{{ with print $labels.a $labels.a }}{{ print . . }}{{ end }}', "may hold only", False),
    ('{{ $a := "x" }}{{ $a = js $a }}', "may hold only", False),
]


@pytest.mark.parametrize("text, reason, syntax", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refused_templates(text, reason, syntax):
    with pytest.raises(TemplateError) as refusal:
        check(text)
    assert reason in str(refusal.value)


def test_syntax_refusals_are_promtools_too(promtool, tmp_path):
    syntax = {f"R{i}": text for i, (text, _, is_syntax) in enumerate(REFUSALS) if is_syntax}
    assert set(promtool_check(syntax, tmp_path)) == set(syntax)


def test_nested_escaping_grows_exponentially_in_prometheus(promtool, tmp_path):
    """js doubles every backslash (Go text/template JSEscape): 16 nested calls, 70 bytes of template,
    make 64 KiB of annotation, on every evaluation of every firing alert; 30 would make 1 GiB. Refused:
    a function that can multiply its input (js, printf, reReplaceAll) never takes another's output."""
    template = "{{ " + "js (" * 15 + 'js "\\\\"' + ")" * 15 + " }}"
    rules = {"groups": [{"name": "g", "rules": [{"alert": "Big", "expr": "vector(1)", "annotations": {"big": template}}]}]}
    (tmp_path / "big.rules.yaml").write_text(dump(rules))
    test = {"rule_files": ["big.rules.yaml"], "evaluation_interval": "1m", "tests": [{"interval": "1m", "alert_rule_test": [
        {"eval_time": "1m", "alertname": "Big", "exp_alerts": [{"exp_annotations": {"big": "\\" * 2 ** 16}}]}]}]}
    (tmp_path / "big.test.yaml").write_text(dump(test))
    result = subprocess.run(["promtool", "test", "rules", "big.test.yaml"], cwd=tmp_path, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    with pytest.raises(TemplateError, match="grows exponentially"):
        check(template)


def test_allowed_templates_render_in_prometheus(promtool, tmp_path):
    """An AlertRule's templates over its own labels and value, as promtool renders them."""
    document = {"apiVersion": "observatory.dev/v1alpha1", "kind": "AlertRule",
                "metadata": {"name": "calls", "namespace": "team-a"},
                "spec": {"severity": "warning", "groupBy": ["model"],
                         "labels": {"model_upper": "{{ $labels.model | toUpper }}"},
                         "annotations": {"summary": "{{ $value | humanize }} calls/s on {{ $labels.model }}",
                                         "description": '{{ printf "%.1f" $value }} {{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}'},
                         "threshold": {"expr": "sum by (model) (rate(llm_calls_total[5m]))", "op": ">", "value": 0}}}
    objects = compile_bundle([parse_resource(document)])
    rule_files = write_rule_files(objects, tmp_path)
    test = {"rule_files": [], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [{"series": 'llm_calls_total{namespace="team-a", model="gpt"}', "values": "0+1500x10"}],
        "alert_rule_test": [{"eval_time": "10m", "alertname": "Calls", "exp_alerts": [{
            "exp_labels": {"alertname": "Calls", "namespace": "team-a", "model": "gpt", "model_upper": "GPT",
                           "observatory_alertrule": "calls", "severity": "warning"},
            "exp_annotations": {"summary": "25 calls/s on gpt",
                                "description": "25.0 model=gpt;"},
        }]}],
    }]}
    test_file = tmp_path / "render.test.yaml"
    test_file.write_text(dump(test))
    outcome = run_test_file(test_file, rule_files, tmp_path)
    assert outcome.ok, outcome.output
