-- The databases of the production services (docker-compose.yml runs this once, on an empty volume).
CREATE DATABASE prefect;      -- the Prefect server
CREATE DATABASE mlflow;       -- MLflow's tracking store and model registry
CREATE DATABASE mlflow_auth;  -- MLflow's basic-auth users and permissions
CREATE DATABASE retrainer;    -- the intake ledger and the promotion/intake locks
