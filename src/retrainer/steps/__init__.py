"""Plain functions, one job each, no Prefect: the steps of a cycle and the operator commands."""
