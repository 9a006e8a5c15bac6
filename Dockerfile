# syntax=docker/dockerfile:1
# The Tenantry image: the operator (`tenantry run`) and the meters (`tenantry meter`).
#
#   docker build -t tenantry:0.1.0 .
#   kind load docker-image tenantry:0.1.0 --name tenantry
#
# Dependencies are pinned in deploy/image-requirements.txt (hack/lock-image-requirements).
# The chart's Deployment runs the ENTRYPOINT with its own arguments (`run --config ...`);
# tests/chart/test_image.py keeps the two in step.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/tenantry
COPY deploy/image-requirements.txt ./
RUN /opt/tenantry/bin/pip install -r image-requirements.txt
COPY pyproject.toml README.md ./
COPY operator ./operator
# The dependencies are all installed above, from the pins: nothing else is resolved here.
RUN /opt/tenantry/bin/pip install --no-deps . \
 && /opt/tenantry/bin/pip check

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="tenantry" \
      org.opencontainers.image.description="Tenantry operator and meters" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/tenantry/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/tenantry /opt/tenantry
# The meters' default spool and file sink live here (a volume in the meter pods).
RUN mkdir -p /var/lib/tenantry && chown 65532:65532 /var/lib/tenantry
# Non-root, numeric so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
ENTRYPOINT ["tenantry"]
CMD ["run"]
