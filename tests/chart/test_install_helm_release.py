"""tools/install_helm.py's path for architectures the pinned wheels lack (the arm64 image): helm's
release tarball is installed only when it matches the SHA-256 file published beside it.

Served from a local HTTP server laid out as get.helm.sh is (`helm-<v>-linux-<arch>.tar.gz` and
`.sha256sum` holding "<hex>  <file name>", https://helm.sh/docs/intro/install/#from-the-binary-releases).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAKE_HELM = b"#!/bin/sh\necho 'v3.17.3+ge4da497'\n"


def _load_installer():
    spec = importlib.util.spec_from_file_location("install_helm", REPO / "tools" / "install_helm.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _tarball(arch: str, helm: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo(f"linux-{arch}/helm")
        info.size, info.mode = len(helm), 0o755
        tar.addfile(info, io.BytesIO(helm))
    return out.getvalue()


@pytest.fixture
def release_server():
    files: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield files, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _publish(files, installer, arch, tarball, digest):
    name = f"helm-{installer.RELEASE_HELM_VERSION}-linux-{arch}.tar.gz"
    files[f"/{name}"] = tarball
    files[f"/{name}.sha256sum"] = f"{digest}  {name}\n".encode()


def test_a_tarball_matching_its_published_checksum_is_installed(release_server, tmp_path, monkeypatch):
    files, base = release_server
    installer = _load_installer()
    monkeypatch.setattr(installer, "RELEASE_URL", base + "/helm-{version}-linux-{arch}.tar.gz")
    tarball = _tarball("arm64", FAKE_HELM)
    _publish(files, installer, "arm64", tarball, hashlib.sha256(tarball).hexdigest())
    installer.install_release_helm("arm64", tmp_path)
    assert (tmp_path / "helm").read_bytes() == FAKE_HELM


def test_a_tarball_differing_from_its_published_checksum_is_refused(release_server, tmp_path, monkeypatch):
    files, base = release_server
    installer = _load_installer()
    monkeypatch.setattr(installer, "RELEASE_URL", base + "/helm-{version}-linux-{arch}.tar.gz")
    tarball = _tarball("arm64", FAKE_HELM)
    _publish(files, installer, "arm64", tarball, hashlib.sha256(b"another upload").hexdigest())
    with pytest.raises(SystemExit, match="differs from the published"):
        installer.install_release_helm("arm64", tmp_path)
    assert not (tmp_path / "helm").exists()


def test_a_helm_of_another_version_is_refused(release_server, tmp_path, monkeypatch):
    files, base = release_server
    installer = _load_installer()
    monkeypatch.setattr(installer, "RELEASE_URL", base + "/helm-{version}-linux-{arch}.tar.gz")
    tarball = _tarball("arm64", b"#!/bin/sh\necho 'v3.16.0+g0'\n")
    _publish(files, installer, "arm64", tarball, hashlib.sha256(tarball).hexdigest())
    with pytest.raises(SystemExit, match="expected version v3.17.3"):
        installer.install_release_helm("arm64", tmp_path)
