"""Everything Spark: the session, column helpers, GE validation and Evidently drift on Spark frames,
and `retrainer check-large`."""
