#!/usr/bin/env bash
# The production services without Docker: the Prefect server and the MLflow tracking server, both on
# PostgreSQL, both on loopback unless told otherwise, MLflow behind its basic-auth app. Runs in the
# foreground and stops both servers when stopped (Ctrl-C, SIGTERM); prints "stack ready" once both answer.
#
# Settings come from the environment, never from a committed file:
#   PREFECT_DATABASE_URL        postgresql+asyncpg://USER@HOST:5432/prefect                   (required)
#   MLFLOW_BACKEND_STORE_URI    postgresql://USER@HOST:5432/mlflow                            (required)
#   MLFLOW_AUTH_ADMIN_PASSWORD  password of the MLflow admin user, created at first start (required,
#                               12 characters or more)
#   MLFLOW_AUTH_ADMIN_USERNAME  default: admin
#   MLFLOW_AUTH_DATABASE_URI    the basic-auth app's user store (default: SQLite in the stack dir)
#   MLFLOW_AUTH=off             no basic-auth app (a laptop; never on a shared network)
#   RETRAINER_STACK_DIR         logs, Prefect home, MLflow artifacts (default: ./retrainer-stack)
#   PREFECT_HOST, PREFECT_PORT  default 127.0.0.1, 4200
#   MLFLOW_HOST, MLFLOW_PORT    default 127.0.0.1, 5000
#   MLFLOW_ARTIFACTS_DESTINATION  default: <stack dir>/mlartifacts (an s3:// bucket in production)
# Workers then use PREFECT_API_URL=http://PREFECT_HOST:PREFECT_PORT/api and, for MLflow,
# MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (read by the MLflow client itself).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd -P)
: "${PREFECT_DATABASE_URL:?set PREFECT_DATABASE_URL (postgresql+asyncpg://USER@HOST:5432/prefect)}"
: "${MLFLOW_BACKEND_STORE_URI:?set MLFLOW_BACKEND_STORE_URI (postgresql://USER@HOST:5432/mlflow)}"
stack_dir=$(mkdir -p "${RETRAINER_STACK_DIR:-./retrainer-stack}" && cd "${RETRAINER_STACK_DIR:-./retrainer-stack}" && pwd)
export PREFECT_HOST=${PREFECT_HOST:-127.0.0.1} PREFECT_PORT=${PREFECT_PORT:-4200}
# The Prefect UI asks this address for its data; by default it would ask port 4200 whatever the server's port.
export PREFECT_UI_API_URL=${PREFECT_UI_API_URL:-http://$PREFECT_HOST:$PREFECT_PORT/api}
export MLFLOW_HOST=${MLFLOW_HOST:-127.0.0.1} MLFLOW_PORT=${MLFLOW_PORT:-5000}
export MLFLOW_ARTIFACTS_DESTINATION=${MLFLOW_ARTIFACTS_DESTINATION:-$stack_dir/mlartifacts}
# Telemetry off: a production network does not phone home.
export PREFECT_SERVER_ANALYTICS_ENABLED=false MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1

if [[ "${MLFLOW_AUTH:-on}" != "off" ]]; then
  : "${MLFLOW_AUTH_ADMIN_PASSWORD:?set MLFLOW_AUTH_ADMIN_PASSWORD (12 characters or more; or MLFLOW_AUTH=off on a laptop)}"
  # mlflow_config/serve.sh writes the auth app's settings file from these, at each start.
  export MLFLOW_APP_NAME=basic-auth MLFLOW_AUTH_STATE_DIR="$stack_dir"
fi

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

PREFECT_HOME="$stack_dir/prefect" PREFECT_API_DATABASE_CONNECTION_URL="$PREFECT_DATABASE_URL" \
  prefect server start --host "$PREFECT_HOST" --port "$PREFECT_PORT" > "$stack_dir/prefect-server.log" 2>&1 &
pids+=($!)
"$here/../mlflow_config/serve.sh" > "$stack_dir/mlflow-server.log" 2>&1 &
pids+=($!)

python - "$PREFECT_HOST:$PREFECT_PORT" "$MLFLOW_HOST:$MLFLOW_PORT" "$stack_dir" "${pids[@]}" <<'PY'
import os, sys, time, urllib.request
prefect, mlflow, logs, *pids = sys.argv[1:]


def alive(pid: int) -> bool:
    # The servers are the shell's children: one that exited is a zombie until the shell reaps it.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


checks = [("Prefect server", f"http://{prefect}/api/health", int(pids[0]), "prefect-server.log"),
          ("MLflow server", f"http://{mlflow}/health", int(pids[1]), "mlflow-server.log")]
deadline = time.monotonic() + 180
for name, url, pid, log in checks:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if not alive(pid):
            tail = open(os.path.join(logs, log), encoding="utf-8", errors="replace").read().strip().splitlines()
            sys.exit(f"run-stack: the {name} stopped at start: {tail[-1] if tail else 'no output'} "
                     f"(see {os.path.join(logs, log)})")
        if time.monotonic() > deadline:
            sys.exit(f"run-stack: the {name} did not answer at {url} within 180 s (see {os.path.join(logs, log)})")
        time.sleep(0.5)
PY
echo "stack ready: PREFECT_API_URL=http://$PREFECT_HOST:$PREFECT_PORT/api MLFLOW_TRACKING_URI=http://$MLFLOW_HOST:$MLFLOW_PORT (logs in $stack_dir)"
# Either server stopping stops the stack: a supervisor (systemd, compose) restarts it whole.
wait -n
