"""The only place Prefect is imported: tasks wrapping the steps (with their retries), the flows
that wire them, events, approval, deployments, the fleet."""
