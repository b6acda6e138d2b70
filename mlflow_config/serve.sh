#!/usr/bin/env bash
# Start the MLflow tracking server with the settings of server.env (values already in the
# environment win). Binds to loopback unless MLFLOW_HOST says otherwise.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd -P)
while IFS='=' read -r key value; do
  [[ -z "$key" || "$key" == \#* ]] && continue
  [[ -z "${!key:-}" ]] && export "$key=$value"
done < "$here/server.env"
if [[ "${MLFLOW_APP_NAME:-}" == "basic-auth" && -z "${MLFLOW_AUTH_CONFIG_PATH:-}" ]]; then
  # MLflow's basic-auth app (deploy/run-stack.sh and docker-compose.yml turn it on). Its settings file
  # is written here from the environment; the admin password stays in MLFLOW_AUTH_ADMIN_PASSWORD,
  # which MLflow reads itself, and is never written to a file.
  : "${MLFLOW_AUTH_ADMIN_PASSWORD:?set MLFLOW_AUTH_ADMIN_PASSWORD for the basic-auth app}"
  state=${MLFLOW_AUTH_STATE_DIR:-$(mktemp -d)}
  mkdir -p "$state"
  export MLFLOW_AUTH_CONFIG_PATH="$state/basic_auth.ini"
  # The file is read with interpolation: a '%' (URL-encoded password) must be written as '%%'.
  auth_database_uri=${MLFLOW_AUTH_DATABASE_URI:-sqlite:///$state/basic_auth.db}
  (umask 077 && cat > "$MLFLOW_AUTH_CONFIG_PATH" <<INI
[mlflow]
default_permission = ${MLFLOW_AUTH_DEFAULT_PERMISSION:-READ}
database_uri = ${auth_database_uri//%/%%}
admin_username = ${MLFLOW_AUTH_ADMIN_USERNAME:-admin}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
# Basic auth sends the password with every request and MLflow checks it against a scrypt hash
# (measured here: 0.1-0.5 s of server CPU per request; a cycle makes dozens). A successful check is
# remembered this long per server worker; a password changed through MLflow's API applies at once
# on the worker that handled it, elsewhere within this window. 0 turns the cache off.
auth_cache_ttl_seconds = ${MLFLOW_AUTH_CACHE_TTL_SECONDS:-60}
INI
  )
  # The auth app signs its forms with this key: a fresh one per start unless one is given.
  export MLFLOW_FLASK_SERVER_SECRET_KEY=${MLFLOW_FLASK_SERVER_SECRET_KEY:-$(python -c 'import secrets; print(secrets.token_hex(32))')}
fi
exec mlflow server ${MLFLOW_APP_NAME:+--app-name "$MLFLOW_APP_NAME"} \
  --host "$MLFLOW_HOST" --port "$MLFLOW_PORT" \
  --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" \
  --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION"
