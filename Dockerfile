# altinn-proxy: multi-stage build. The final image has no compiler, runs as a non-root user and
# works with a read-only root filesystem (only /tmp and the data directory /data are written).
# It sets no proxy setting by environment: the settings file (the chart's ConfigMap) is the only
# source, so nothing overrules it silently (`altinn-proxy check` names any ALTINN_PROXY_* override).
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The runtime dependencies exactly as `make test` tested them: versions and hashes from the lock.
# Every one ships binary wheels for this platform: no compiler is needed here either.
COPY requirements.lock ./
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY mappings ./mappings
COPY proxy ./proxy
# The package itself (its mapping files are package data); its dependencies are already locked in.
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps . \
    && /opt/venv/bin/pip check

FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 altinn \
    && useradd --system --uid 10001 --gid altinn --home-dir /app --shell /usr/sbin/nologin altinn \
    && mkdir -p /data /app \
    && chown altinn:altinn /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /app
USER 10001:10001
VOLUME ["/data", "/tmp"]
EXPOSE 8080 9464
HEALTHCHECK NONE
# `docker run IMAGE version`, `... check --config F`, `... sandbox --host 0.0.0.0` all work;
# without arguments the image serves with the settings file the chart mounts.
ENTRYPOINT ["altinn-proxy"]
CMD ["serve", "--config", "/etc/altinn-proxy/settings.yaml"]
