#!/usr/bin/env bash
# Start the MLflow tracking server with the settings of server.env (values already in the
# environment win). Binds to loopback unless MLFLOW_HOST says otherwise.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
while IFS='=' read -r key value; do
  [[ -z "$key" || "$key" == \#* ]] && continue
  [[ -z "${!key:-}" ]] && export "$key=$value"
done < "$here/server.env"
exec mlflow server \
  --host "$MLFLOW_HOST" --port "$MLFLOW_PORT" \
  --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" \
  --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION"
