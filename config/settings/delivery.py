"""Settings: the delivery pipeline (retries, claims, chunks, publishing, backpressure, result hooks)."""
from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from notifier.env import env_bool, env_float, env_int, env_str

# --- Delivery policy --------------------------------------------------------------
NOTIFIER_RETRY_BACKOFF_BASE = env_float("NOTIFIER_RETRY_BACKOFF_BASE", 10.0)
NOTIFIER_RETRY_BACKOFF_MAX = env_float("NOTIFIER_RETRY_BACKOFF_MAX", 300.0)
# A row left `sending` this long after its claim is put back (the worker died).
NOTIFIER_CLAIM_TIMEOUT = env_float("NOTIFIER_CLAIM_TIMEOUT", 330.0)
# A row left `queued` this long with no claim is republished (its message was lost).
NOTIFIER_REQUEUE_AFTER = env_float("NOTIFIER_REQUEUE_AFTER", 600.0)
# A row whose claim timed out this many times (its worker died or hung each time) is `failed` and
# dead-lettered instead of being put back again.
NOTIFIER_MAX_CLAIM_TIMEOUTS = env_int("NOTIFIER_MAX_CLAIM_TIMEOUTS", 3)
# A worker stops handing a chunk's notifications to providers after this many seconds (at most half
# of the task's soft and hard time limits and of NOTIFIER_CLAIM_TIMEOUT), records what it sent and
# republishes the rest in two smaller chunks. The only limit under a pool without time limits (threads).
NOTIFIER_CHUNK_DEADLINE = env_float("NOTIFIER_CHUNK_DEADLINE", 60.0)
if NOTIFIER_CHUNK_DEADLINE <= 0 or NOTIFIER_MAX_CLAIM_TIMEOUTS < 1:
    raise ImproperlyConfigured("NOTIFIER_CHUNK_DEADLINE must be > 0 and NOTIFIER_MAX_CLAIM_TIMEOUTS >= 1")
NOTIFIER_DISPATCH_INTERVAL = env_float("NOTIFIER_DISPATCH_INTERVAL", 1.0)
NOTIFIER_SWEEP_INTERVAL = env_float("NOTIFIER_SWEEP_INTERVAL", 30.0)
# Result hooks (inbox entries, webhook events) run after the results' commit from an outbox row
# (apps/notifications/outbox.py). The beat job runs rows left behind or failed every this many seconds;
# a row whose hook failed this many times is dead (kept for the admin).
NOTIFIER_RESULT_HOOK_INTERVAL = env_float("NOTIFIER_RESULT_HOOK_INTERVAL", 5.0)
NOTIFIER_RESULT_HOOK_MAX_ATTEMPTS = env_int("NOTIFIER_RESULT_HOOK_MAX_ATTEMPTS", 10)
NOTIFIER_CHUNK_SIZE = env_int("NOTIFIER_CHUNK_SIZE", 1000)
# --- Throughput (issue 7): most items per POST /api/v1/notifications/batch/ ---
NOTIFIER_BATCH_MAX = env_int("NOTIFIER_BATCH_MAX", 1000)
# Small creates committed within this many ms share one delivery message (0 = publish each alone);
# a request waits at most NOTIFIER_PUBLISH_WAIT s for the broker's confirm of its message.
NOTIFIER_PUBLISH_COALESCE_MS = env_float("NOTIFIER_PUBLISH_COALESCE_MS", 2.0)
# The window of a publish no request waits for (the group committer's: its requests are answered once their
# rows are committed), when coalescing is on: fewer, larger messages (publisher CPU per message in the web
# process, claims and result writes per message in the workers) for a few milliseconds more created -> sent.
# Only under load (outbox._LAZY_GATHERS): a trickle of single creates is published after the short window.
NOTIFIER_PUBLISH_LAZY_MS = env_float("NOTIFIER_PUBLISH_LAZY_MS", 50.0)
NOTIFIER_PUBLISH_WAIT = env_float("NOTIFIER_PUBLISH_WAIT", 5.0)
# Backpressure (backlog.py): a batch waits while a queue it feeds holds more than NOTIFIER_BACKLOG_MAX
# ready delivery messages (chunks of up to NOTIFIER_CHUNK_SIZE ids), for at most NOTIFIER_BACKLOG_WAIT s,
# and is then accepted anyway. 0 turns it off.
NOTIFIER_BACKLOG_MAX = env_int("NOTIFIER_BACKLOG_MAX", 30)
NOTIFIER_BACKLOG_WAIT = env_float("NOTIFIER_BACKLOG_WAIT", 2.0)
# Single creates of concurrent requests share one policy check, insert and publish (groupcommit.py).
NOTIFIER_GROUP_COMMIT = env_bool("NOTIFIER_GROUP_COMMIT", True)
# Under load (at least one more request expected in the window at the committer's recent rate), the oldest
# pending single waits up to this many ms for others to join its group: fewer, larger groups. 0: never.
NOTIFIER_GROUP_COMMIT_GATHER_MS = env_float("NOTIFIER_GROUP_COMMIT_GATHER_MS", 4.0)
# Their requests are answered once their rows are committed, and the group's confirmed publish follows
# on the process's publisher thread (a failed or lost publish: the dispatcher and the sweep republish).
# On: each request also waits for the broker's confirm of its message (under load RabbitMQ confirms a
# persistent message to a busy classic queue only once a worker has acknowledged it).
NOTIFIER_ANSWER_AFTER_CONFIRM = env_bool("NOTIFIER_ANSWER_AFTER_CONFIRM", False)
# Created rows whose publish is still unconfirmed this long after their commit (their web process died in
# between: a PendingPublish entry is left) are republished by the dispatcher. 0: no entries, the sweep only.
NOTIFIER_PUBLISH_GRACE = env_float("NOTIFIER_PUBLISH_GRACE", 5.0)
# The web process's publisher deletes the entries of confirmed publishes in one statement per this many
# milliseconds (and before it idles), not one per publish: under single-create load that was a round trip
# per group. At most a tenth of the grace, so an entry never outlives it because of this.
NOTIFIER_PUBLISH_SETTLE_MS = env_float("NOTIFIER_PUBLISH_SETTLE_MS", 250.0)
# The common single create answered on the web process's event loop, without Django's request
# cycle (apps/notifications/api/express.py; needs the group committer).
NOTIFIER_EXPRESS_CREATE = env_bool("NOTIFIER_EXPRESS_CREATE", True)
NOTIFIER_PUBLIC_URL = env_str("NOTIFIER_PUBLIC_URL", "http://127.0.0.1:8000")
# Per-recipient frequency caps (Category.cap_*): the longest a capped notification is held.
NOTIFIER_FREQUENCY_CAP_MAX_HOLD = env_float("NOTIFIER_FREQUENCY_CAP_MAX_HOLD", 7 * 86400.0)

# --- Data lifecycle (apps/notifications/partitions.py, docs/operations.md "Retention") ------------------
# Notifications and their events live in time partitions of NOTIFIER_PARTITION_INTERVAL seconds (aligned
# to multiples of it since the epoch; default a day), created NOTIFIER_PARTITIONS_AHEAD intervals ahead by
# beat. Partitions older than the retention (NOTIFIER_RETENTION_DAYS, or NOTIFIER_RETENTION_MINUTES when
# set: benchmarks and tests) are dropped whole once no row in them is scheduled, queued or sending;
# 0 keeps everything.
NOTIFIER_PARTITION_INTERVAL = env_float("NOTIFIER_PARTITION_INTERVAL", 86400.0)
NOTIFIER_PARTITIONS_AHEAD = env_int("NOTIFIER_PARTITIONS_AHEAD", 3)
NOTIFIER_RETENTION_DAYS = env_float("NOTIFIER_RETENTION_DAYS", 30.0)
NOTIFIER_RETENTION_MINUTES = env_float("NOTIFIER_RETENTION_MINUTES", 0.0)
if NOTIFIER_PARTITION_INTERVAL < 60 or NOTIFIER_PARTITIONS_AHEAD < 1:
    raise ImproperlyConfigured("NOTIFIER_PARTITION_INTERVAL must be >= 60 s and NOTIFIER_PARTITIONS_AHEAD >= 1")
if NOTIFIER_RETENTION_DAYS < 0 or NOTIFIER_RETENTION_MINUTES < 0:
    raise ImproperlyConfigured("NOTIFIER_RETENTION_DAYS and NOTIFIER_RETENTION_MINUTES must be >= 0")
NOTIFIER_RETENTION_SECONDS = NOTIFIER_RETENTION_MINUTES * 60 or NOTIFIER_RETENTION_DAYS * 86400
# The beat job that creates and drops partitions: a quarter of an interval, at most every 5 minutes.
NOTIFIER_PARTITION_CHECK_INTERVAL = min(300.0, NOTIFIER_PARTITION_INTERVAL / 4)
