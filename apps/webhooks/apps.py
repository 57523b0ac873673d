from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "apps.webhooks"
    label = "webhooks"
    verbose_name = "Outbound webhooks"

    def ready(self) -> None:
        from apps.notifications import policy

        hook = "apps.webhooks.hooks"
        if hook not in policy.RESULT_HOOKS:
            policy.RESULT_HOOKS.append(hook)
