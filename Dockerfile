# The tenantry operator image. The Helm chart (charts/tenantry) runs it with command
# ["tenantry-operator"] as uid/gid 65532, a read-only root file system and an emptyDir on /tmp.
#
# Reproducible: the base image is pinned by digest; every Python package is pinned with its hashes
# (requirements/operator.lock for the operator's dependencies, requirements/build.lock for the
# build backend; `make lock` writes both, a unit test checks them against pyproject.toml); pip
# installs exactly the lock (--require-hashes --no-deps) and `pip check` proves it complete;
# bytecode is compiled hash-based (no time stamps in .pyc); the wheel's and the layers' file times
# come from SOURCE_DATE_EPOCH (the commit's time). Needs BuildKit (the default builder since
# Docker 23) for RUN --mount. The release workflow (.github/workflows/release.yaml) builds it so:
#
#   docker buildx build \
#     --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) \
#     --build-arg VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' operator/tenantry/__init__.py) \
#     --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg CREATED=$(date -u -d @$(git log -1 --format=%ct) +%Y-%m-%dT%H:%M:%SZ) \
#     --output type=docker,rewrite-timestamp=true -t tenantry/operator:dev .
#
# PYTHON_IMAGE is python:3.12-slim pinned by the digest of its multi-platform image index (amd64
# and arm64 alike). This digest could not be checked where this file was written (no container
# registry reachable there): the first build pulls it and fails loudly if it is wrong. Refresh it
# when Python or Debian ship fixes (Dependabot proposes it, .github/dependabot.yml), with
#   docker buildx imagetools inspect python:3.12-slim --format '{{json .Manifest.Digest}}'
# Its Python minor version must be the lock's --python-version (a unit test checks).
ARG PYTHON_IMAGE=python:3.12-slim@sha256:78387bc3881b8273120a12ebe6c1ab22b018ccc2c9adf565ae1ac9b536e184ea

# Stage 1: the operator's wheel, built with the locked build backend and no network for it.
FROM ${PYTHON_IMAGE} AS wheel
ARG SOURCE_DATE_EPOCH
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements/build.lock requirements/build.lock
RUN python3 -m pip install --require-hashes --no-deps --no-compile -r requirements/build.lock
COPY pyproject.toml README.md LICENSE ./
COPY operator/ operator/
RUN python3 -m pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

# Stage 2: the image: the locked dependencies, then the operator's wheel, nothing else.
FROM ${PYTHON_IMAGE}
ARG SOURCE_DATE_EPOCH
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="tenantry-operator" \
      org.opencontainers.image.description="Kubernetes operator that runs SaaS customer tenants of reseller partners from git" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://github.com/tenantry/tenantry" \
      org.opencontainers.image.url="https://github.com/tenantry/tenantry" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN --mount=type=bind,source=requirements/operator.lock,target=/tmp/operator.lock \
    --mount=type=bind,from=wheel,source=/wheels,target=/tmp/wheels \
    python3 -m pip install --require-hashes --no-deps --no-compile -r /tmp/operator.lock \
    && python3 -m pip install --no-deps --no-compile /tmp/wheels/tenantry-*.whl \
    && python3 -m pip check \
    && python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash \
        $(python3 -c 'import site; print(*site.getsitepackages())')
COPY LICENSE /usr/share/doc/tenantry/LICENSE

WORKDIR /
USER 65532:65532
ENTRYPOINT ["tenantry-operator"]
