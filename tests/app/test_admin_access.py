"""The admin is behind a login and only staff users get in."""
import pytest
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db


def test_the_admin_redirects_anonymous_users_to_the_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_non_staff_user_cannot_log_into_the_admin(client):
    User.objects.create_user("mallory", password="a-long-password-1")
    response = client.post("/admin/login/?next=/admin/", {"username": "mallory", "password": "a-long-password-1"})
    assert response.status_code == 200  # the form again, with an error
    assert client.get("/admin/").status_code == 302


def test_a_staff_user_gets_in(client):
    User.objects.create_user("ops", password="a-long-password-1", is_staff=True)
    client.login(username="ops", password="a-long-password-1")
    assert client.get("/admin/").status_code == 200
