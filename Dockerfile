# Worker image: a Prefect worker with retrainer installed, able to run the flows of prefect.yaml.
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
RUN pip install '.[postgres]'

COPY flows ./flows
COPY prefect.yaml ./
COPY expectations ./expectations
COPY mlflow_config ./mlflow_config

USER retrainer
# PREFECT_API_URL and the MLflow settings come from the environment of the container.
CMD ["prefect", "worker", "start", "--pool", "retrainer", "--type", "process"]
