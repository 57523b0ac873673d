"""notifier core: framework-light code the Django apps call.

Channel providers, routing and priority policy, retry classification and
backoff, PII masking and id generation live here. Nothing in this package
defines Django models.
"""
