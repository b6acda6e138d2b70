# Worker image: a Prefect worker with retrainer installed, able to run the flows of prefect.yaml; on
# Kubernetes the same image is the worker and every flow run's Job (deploy/kubernetes).
# docker-compose.yml also runs the MLflow server from it (mlflow_config/serve.sh), hence the `server` extra.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    MLFLOW_DISABLE_TELEMETRY=true \
    GX_ANALYTICS_ENABLED=false \
    DO_NOT_TRACK=1

RUN useradd --create-home --uid 1000 retrainer
WORKDIR /opt/retrainer

COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install '.[postgres,server,s3,kubernetes]'

COPY flows ./flows
COPY prefect.yaml ./
COPY expectations ./expectations
COPY mlflow_config ./mlflow_config
COPY deploy ./deploy
# The suites are written by `retrainer init` and edited by data engineers: the unprivileged user owns them
# (the config folder itself is mounted read-only).
RUN mkdir -p /opt/retrainer/config /var/lib/retrainer \
    && chown retrainer /var/lib/retrainer \
    && chown -R retrainer /opt/retrainer/expectations
ENV RETRAINER_STORAGE__SUITES_DIR=/opt/retrainer/expectations
# Flow runs log one line per batch decision, not a "Task run ... Completed()" line per step (as `retrainer serve`).
ENV PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL=WARNING

USER retrainer
# PREFECT_API_URL, the MLflow settings and credentials, the ledger URL and the webhook URL come from
# the container's environment; the model's config is mounted at /opt/retrainer/config/retrainer.yaml.
CMD ["prefect", "worker", "start", "--pool", "retrainer", "--type", "process"]
