"""/demo/inbox/?recipient=<external_id>[&project=<slug>]: a recipient's inbox with live updates (DEBUG or staff only).

The page plays the client's back end and front end at once: the view mints a
recipient token (as a client's back end would with its API key) and the
page's JavaScript uses only that token to list the inbox, mark items read and
follow the live stream with EventSource.
"""
from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .tokens import recipient_token_issue


@require_GET
def inbox_demo(request):
    user = getattr(request, "user", None)
    if not (settings.DEBUG or (user is not None and user.is_active and user.is_staff)):
        raise Http404("The inbox demo is available with DEBUG on or to staff.")
    external_id = request.GET.get("recipient", "").strip()
    project = request.GET.get("project", "").strip() or "default"
    context = {"external_id": external_id, "token": None}
    if external_id:
        from apps.recipients.models import Recipient

        recipient = Recipient.objects.filter(external_id=external_id, project__slug=project).first()
        if recipient is None:
            context["error"] = f"No recipient with external id {external_id!r} in project {project!r}."
        else:
            token, expires_at = recipient_token_issue(recipient=recipient)
            context.update(token=token, expires_at=expires_at, recipient=recipient)
    return render(request, "inbox/demo.html", context)
