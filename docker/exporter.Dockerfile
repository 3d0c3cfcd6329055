# seatq-exporter (clients/python, seatq.exporter) on Debian 12: a Prometheus exporter reading
# INFO seatq, QUEUE.INFO and SEAT.INFO from one seatq server. Build from the repository root
# (the context; .dockerignore lets clients/python/src in); see docs/monitoring.md.
#
#   docker build -f docker/exporter.Dockerfile -t seatq-exporter .
#   docker run -d -p 127.0.0.1:9121:9121 -e SEATQ_REDIS_PASSWORD='...' seatq-exporter \
#       --redis-url redis://seatq-host:6379/0 --top 10 --event sale:2026
#
# Python, redis-py and prometheus_client are Debian 12's packages (python3-redis 4.3,
# python3-prometheus-client 0.16: the exporter speaks RESP2 and needs nothing newer), so the
# image needs the Debian mirror only, no PyPI. BASE_IMAGE: any Debian bookworm image with apt
# sources (CI uses the debootstrap image of .ci/container).

ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-redis python3-prometheus-client \
    && rm -rf /var/lib/apt/lists/*
# The package's source, importable as `seatq` (no pip: the dependencies are the Debian ones above).
COPY clients/python/src/seatq /usr/local/lib/seatq-exporter/seatq
RUN set -eu; \
    groupadd --gid 10001 seatq; \
    useradd --uid 10001 --gid seatq --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin seatq; \
    chmod -R a+rX /usr/local/lib/seatq-exporter
ENV PYTHONPATH=/usr/local/lib/seatq-exporter \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER seatq:seatq
EXPOSE 9121
# Passes when /metrics answers (whether or not the server is reachable: see seatq_up).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9121/metrics', timeout=4)"]
# Options: --redis-url, --event KEY (repeatable), --top N, ... (seatq-exporter --help). The
# password: SEATQ_REDIS_PASSWORD, or SEATQ_REDIS_PASSWORD_FILE naming a file (a secret).
ENTRYPOINT ["python3", "-m", "seatq.exporter", "--address", "0.0.0.0", "--port", "9121"]
CMD ["--redis-url", "redis://localhost:6379/0"]
