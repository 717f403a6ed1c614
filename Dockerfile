# The tenantry operator image. The Helm chart (charts/tenantry) runs it with command
# ["tenantry-operator"] as uid/gid 65532, a read-only root file system and an emptyDir on /tmp.
#   docker build -t tenantry/operator:0.1.0 .
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN pip install --no-cache-dir . && rm -rf /src

WORKDIR /
USER 65532:65532
ENTRYPOINT ["tenantry-operator"]
