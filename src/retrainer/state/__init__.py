"""What retrainer remembers: the accepted and prediction stores, the journal of cycles, the intake
ledger (SQLAlchemy), and the locks."""
