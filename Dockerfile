# data-imports: the Meltano project with both plugins, run by its own scheduler.
# Build: docker build -t data-imports .      Run: see docker-entrypoint.sh and README.md.
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
    DATA_IMPORTS_HEALTH_DIR=/data/health

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app app \
    && mkdir -p /project /data \
    && chown app:app /project /data \
    && python -m venv /opt/venv

# Meltano and every pinned dependency first: this layer changes only with requirements.txt.
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt && rm /tmp/requirements.txt

WORKDIR /project

# The plugins' metadata before their source: the editable installs (in /opt/venv, for the
# runner, and the plugin environments `meltano install` builds) are not invalidated by a change
# of code alone.
COPY --chown=10001:10001 meltano.yml requirements.txt ./
COPY --chown=10001:10001 plugins/tap-nationalgas/pyproject.toml plugins/tap-nationalgas/README.md plugins/tap-nationalgas/
COPY --chown=10001:10001 plugins/target-influxdb/pyproject.toml plugins/target-influxdb/README.md plugins/target-influxdb/
RUN install -d -o 10001 -g 10001 plugins/tap-nationalgas/tap_nationalgas plugins/target-influxdb/target_influxdb \
    && install -o 10001 -g 10001 /dev/null plugins/tap-nationalgas/tap_nationalgas/__init__.py \
    && install -o 10001 -g 10001 /dev/null plugins/target-influxdb/target_influxdb/__init__.py \
    && pip install --no-cache-dir --no-deps -e plugins/tap-nationalgas -e plugins/target-influxdb \
    && find plugins -name '*.egg-info' -prune -exec rm -rf {} +

USER 10001:10001
RUN MELTANO_DATABASE_URI=sqlite:////tmp/build-meltano.db meltano install \
    && rm -rf /home/app/.cache /tmp/build-meltano.db

COPY --chown=10001:10001 . .

ENV MELTANO_PROJECT_READONLY=1
VOLUME ["/data"]
HEALTHCHECK --interval=60s --timeout=15s --start-period=60s --retries=3 \
    CMD ["python", "/project/scheduler.py", "health"]
ENTRYPOINT ["/project/docker-entrypoint.sh"]
CMD ["schedule"]
