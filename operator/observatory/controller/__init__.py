"""The operator loop: kopf handlers that compile AlertRules and SLOs and apply the result.

settings  configuration from the environment the chart's Deployment sets
kube      the Kubernetes adapter, the only code that calls the API
loading   pure: does a prometheus-operator `Prometheus` select a PrometheusRule?
status    pure: conditions and the status stanza
reconcile one idempotent reconcile shared by the kinds
handlers  kopf registrations, one module per kind
metrics   prometheus-client metrics of the loop
app       the registry, kopf settings and `observatory run`
"""
