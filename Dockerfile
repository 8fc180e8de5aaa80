# altinn-proxy: multi-stage build. The final image has no compiler, runs as a non-root user and
# works with a read-only root filesystem (only /tmp and the data directory /data are written).
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proxy ./proxy
# Every runtime dependency ships binary wheels for this platform: no compiler is needed here either.
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir --only-binary=:all: .

FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 altinn \
    && useradd --system --uid 10001 --gid altinn --home-dir /app --shell /usr/sbin/nologin altinn \
    && mkdir -p /data /app \
    && chown altinn:altinn /data
COPY --from=build /opt/venv /opt/venv
COPY mappings /app/mappings
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ALTINN_PROXY_LISTEN__HOST=0.0.0.0 \
    ALTINN_PROXY_LISTEN__METRICS_HOST=0.0.0.0 \
    ALTINN_PROXY_DATA_DIR=/data \
    ALTINN_PROXY_MAPPINGS_DIR=/app/mappings \
    ALTINN_PROXY_TIMEOUTS__DRAIN_DELAY=5
WORKDIR /app
USER 10001:10001
VOLUME ["/data", "/tmp"]
EXPOSE 8080 9464
HEALTHCHECK NONE
ENTRYPOINT ["altinn-proxy", "serve"]
CMD ["--config", "/etc/altinn-proxy/settings.yaml"]
