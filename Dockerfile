# data-imports: the Meltano project with both plugins, run by its own scheduler.
# Build: docker build -t data-imports .      Run: see docker-entrypoint.sh and README.md.

# The influx CLI (InfluxDB 2.x), for the backup service's `influx backup`.
FROM influxdb:2.7 AS influx-cli

FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    MELTANO_ENVIRONMENT=prod \
    MELTANO_SEND_ANONYMOUS_USAGE_STATS=false \
    MELTANO_CLI_DISABLE_VERSION_CHECK=true \
    MELTANO_DATABASE_URI=sqlite:////data/meltano.db \
    TARGET_INFLUXDB_OUTPUT_PATH=/data/output \
    DATA_IMPORTS_LOG_DIR=/data/logs \
    DATA_IMPORTS_LOCK_DIR=/data/locks \
    DATA_IMPORTS_HEALTH_DIR=/data/health \
    XDG_STATE_HOME=/tmp/state \
    XDG_CACHE_HOME=/tmp/cache

COPY --from=influx-cli /usr/local/bin/influx /usr/local/bin/influx

# The app user owns only what it writes: /data (state, logs) and the mount points of the compose
# stack's volumes. The code (/project) and the installed environments belong to root.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app app \
    && mkdir -p /project \
    && install -d -o 10001 -g 10001 /data /backups /stack/grafana-alerting /stack/influxdb-init \
    && install -d -o 472 -g 0 /stack/grafana-dashboards \
    && python -m venv /opt/venv

# Meltano and every pinned dependency first: this layer changes only with requirements.txt.
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt && rm /tmp/requirements.txt

WORKDIR /project

# The plugins' metadata before their source: the editable installs (in /opt/venv, for the
# runner, and the plugin environments `meltano install` builds) are not invalidated by a change
# of code alone.
COPY meltano.yml requirements.txt ./
COPY plugins/tap-nationalgas/pyproject.toml plugins/tap-nationalgas/README.md plugins/tap-nationalgas/
COPY plugins/target-influxdb/pyproject.toml plugins/target-influxdb/README.md plugins/target-influxdb/
RUN mkdir -p plugins/tap-nationalgas/tap_nationalgas plugins/target-influxdb/target_influxdb \
    && touch plugins/tap-nationalgas/tap_nationalgas/__init__.py \
        plugins/target-influxdb/target_influxdb/__init__.py \
    && pip install --no-cache-dir --no-deps -e plugins/tap-nationalgas -e plugins/target-influxdb \
    && find plugins -name '*.egg-info' -prune -exec rm -rf {} +

# Meltano writes each run's plugin configuration (it holds the token) to .meltano/run: a link to
# /tmp, the one place besides /data the app user may write (a tmpfs under compose).
RUN MELTANO_DATABASE_URI=sqlite:////tmp/build-meltano.db meltano install \
    && rm -rf /root/.cache /tmp/build-meltano.db /tmp/state /tmp/cache .meltano/run \
    && ln -s /tmp/meltano-run .meltano/run

COPY . .

ENV MELTANO_PROJECT_READONLY=1
USER 10001:10001
VOLUME ["/data"]
HEALTHCHECK --interval=60s --timeout=15s --start-period=60s --retries=3 \
    CMD ["python", "/project/scheduler.py", "health"]
ENTRYPOINT ["/project/docker-entrypoint.sh"]
CMD ["schedule"]
