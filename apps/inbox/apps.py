from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "apps.inbox"
    label = "inbox"
    verbose_name = "In-app inbox"

    def ready(self) -> None:
        from apps.notifications import policy

        hook = "apps.inbox.hooks"
        if hook not in policy.RESULT_HOOKS:
            policy.RESULT_HOOKS.append(hook)
