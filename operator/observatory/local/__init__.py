"""The platform on one machine: Phoenix, Prometheus, Alertmanager and a local notification receiver
as real processes on 127.0.0.1, configured from the same compiled objects the operator applies.

`observatory local up` starts it, `observatory local load` drives a synthetic LLM app against it,
and `observatory demo` runs a scripted incident through it.
"""
