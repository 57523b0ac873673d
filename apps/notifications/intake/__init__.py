"""Taking notifications in: ``validation`` and ``items`` (one item, checked cheaply), ``batch`` (the batch
endpoint), ``create`` (policy, insert, publish after commit), ``groupcommit`` (single creates of
concurrent requests together), ``backpressure`` (a batch waits while its queues are deep)."""
