"""What the Kubernetes adapter sends holds where the apiserver is strict: Event note size.
(Shared SLO objects written by two writers at once: test_controller_slo_groups.py.)"""

from __future__ import annotations

from controller_harness import EVENTS
from k8s.emulator import running_cluster
from observatory.controller.kube import Kube, Owner
from observatory.conventions import Conventions

# The apiserver limits an events.k8s.io/v1 note to 1 KiB in bytes (pkg/apis/core/validation/events.go,
# NoteLengthLimit = 1024, checked with len() of the Go string, i.e. UTF-8 bytes).
NOTE_LIMIT_BYTES = 1024


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
