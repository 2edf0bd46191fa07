"""Events: the Postgres outbox and its relay to Redis Streams."""
