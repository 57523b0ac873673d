from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "apps.workflows"
    label = "workflows"
    verbose_name = "Workflows (digests and channel fallback)"

    def ready(self) -> None:
        from apps.notifications import policy

        for hooks, path in ((policy.INSERT_HOOKS, "apps.workflows.hooks.workflows_hold"),
                            (policy.DISPATCH_JOBS, "apps.workflows.hooks.workflows_release_due")):
            if path not in hooks:
                hooks.append(path)
