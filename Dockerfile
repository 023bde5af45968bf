# syntax=docker/dockerfile:1
# Worker image: `celery -A dispatcher worker` by default. The same image runs beat, flower and
# `dispatcher db upgrade` (see docker-compose.yml).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY dispatcher ./dispatcher
COPY providers ./providers
COPY models ./models
# A regular (not editable) install: the runtime stage gets the virtualenv and no source tree.
# The flower extra is the dashboard the compose stack's flower service runs.
RUN /opt/venv/bin/pip install -c constraints.txt ".[flower]"

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 dispatcher \
    && useradd --system --uid 10001 --gid dispatcher --home-dir /var/lib/dispatcher \
        --create-home --shell /usr/sbin/nologin dispatcher
COPY --from=build /opt/venv /opt/venv
# Writable by the service user: beat keeps its schedule file in the working directory.
WORKDIR /var/lib/dispatcher
# Numeric, so an orchestrator enforcing "run as non-root" can verify it without /etc/passwd.
USER 10001:10001
CMD ["celery", "-A", "dispatcher", "worker", "--loglevel", "INFO"]
