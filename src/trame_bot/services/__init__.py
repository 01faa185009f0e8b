"""Use cases. Each public function is one transaction, with its audit event written inside it;
outward effects are outbox rows in that same transaction, sent only after it commits."""
