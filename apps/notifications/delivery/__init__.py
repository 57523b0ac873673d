"""The worker side: ``worker`` (claim, send, record: what ``notifier.deliver`` runs), ``messages`` (what a
chunk is sent as), ``outcomes`` (what a provider's answers make of a notification), ``results`` (writing
them back)."""
