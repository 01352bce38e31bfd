# syntax=docker/dockerfile:1
# Observatory operator image, linux/amd64 and linux/arm64. Built by `make image` (both platforms,
# buildx) and `make deploy` (the local platform, for kind); needs BuildKit (bind mounts).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- helm 3.17.3 for the target platform (tools/install_helm.py): on amd64 the hash-pinned binary
# `make setup` installs; on arm64 helm's release tarball, checked against its published checksum.
FROM ${PYTHON_IMAGE} AS helm
ARG TARGETARCH
COPY tools/install_helm.py /src/install_helm.py
RUN python /src/install_helm.py --dest /out --arch "${TARGETARCH:-amd64}"

# --- build: the operator wheel and every dependency as wheels (all have aarch64 wheels on PyPI).
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY operator/ operator/
RUN pip wheel --no-cache-dir --wheel-dir /wheels ./operator

# --- runtime: no compilers, nothing left from the build stages but the installed packages and helm.
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# Only the wheels built above can be installed (--no-index), so the pin is the build itself.
# hadolint ignore=DL3013
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels observatory \
 && groupadd --system --gid 65532 observatory \
 && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin observatory
COPY --from=helm /out/helm /usr/local/bin/helm
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["observatory", "run"]
