"""The Django admin for notifications and API keys, as a logged-in staff user."""
import pytest
from django.contrib.auth import get_user_model

from apps.notifications.intake.create import notifications_create
from apps.notifications.models import Notification, Status
from apps.notifications.specs import NotificationSpec

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw-for-tests")
    client.force_login(user)
    return client


def _notification(status=Status.QUEUED):
    [n] = notifications_create(specs=[NotificationSpec(
        channel="email", category="transactional", priority="normal", to="dana@example.com",
        content={"subject": "s", "body": "b"})])
    Notification.objects.filter(pk=n.pk).update(status=status, attempts=4, last_error="SMTP 451 busy")
    return n


def test_notification_changelist_filters_and_masks_addresses(staff):
    _notification(Status.FAILED)
    response = staff.get("/admin/notifications/notification/?status__exact=failed&channel__exact=email")
    assert response.status_code == 200
    assert b"d***@example.com" in response.content
    assert b"dana@example.com" not in response.content


def test_notification_change_page_is_read_only_and_shows_events(staff):
    n = _notification()
    response = staff.get(f"/admin/notifications/notification/{n.pk}/change/")
    assert response.status_code == 200
    assert b"queued" in response.content
    response = staff.post(f"/admin/notifications/notification/{n.pk}/change/", {"status": "sent"})
    assert response.status_code == 403
    assert Notification.objects.get(pk=n.pk).status == Status.QUEUED


def test_replay_action_requeues_failed_notifications_only(staff):
    failed, queued = _notification(Status.FAILED), _notification(Status.QUEUED)
    response = staff.post("/admin/notifications/notification/", {
        "action": "replay", "_selected_action": [str(failed.pk), str(queued.pk)],
    }, follow=True)
    assert response.status_code == 200
    assert b"Requeued 1 failed notification" in response.content
    failed.refresh_from_db()
    assert failed.status == Status.QUEUED and failed.attempts_at_replay == 4
    assert failed.events.filter(detail__contains="replayed from the admin").exists()


@pytest.mark.parametrize("url", [
    "/admin/", "/admin/notifications/category/", "/admin/notifications/category/add/",
    "/admin/apikeys/apikey/", "/admin/recipients/recipient/",
])
def test_admin_pages_load(staff, url):
    assert staff.get(url).status_code == 200


def test_category_can_be_added_in_the_admin(staff):
    response = staff.post("/admin/notifications/category/add/", {
        "slug": "billing", "name": "Billing", "description": "", "default_priority": "normal",
        "allow_opt_out": "on", "cap_count": "0", "cap_period_seconds": "86400", "cap_action": "suppress",
    })
    assert response.status_code == 302
    from apps.notifications.models import Category

    assert Category.objects.filter(slug="billing", allow_opt_out=True, quiet_hours_apply=False).exists()
