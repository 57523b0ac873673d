from django.db import models

from apps.apikeys.models import default_project_id


class RecurringSendOwner(models.Model):
    """The project a recurring send (a django-celery-beat ``PeriodicTask``) belongs to, and its channel.

    Only keys of that project see or delete it through the API, and its runs create notifications of that
    project for that project's recipients. A recurring send made in the admin gets the ``default``
    project unless one is chosen there.
    """

    periodic_task = models.OneToOneField("django_celery_beat.PeriodicTask", primary_key=True,
                                         on_delete=models.CASCADE, related_name="notifier_owner")
    project = models.ForeignKey("apikeys.Project", on_delete=models.PROTECT, related_name="+",
                                default=default_project_id)
    channel = models.CharField(max_length=16, blank=True)

    class Meta:
        verbose_name = "recurring send owner"

    def __str__(self) -> str:
        return f"{self.periodic_task_id} ({self.project_id})"
