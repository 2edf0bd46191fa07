"""The durable store: PostgreSQL tables, engines and the few statements that need care."""
