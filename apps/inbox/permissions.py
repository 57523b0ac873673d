from rest_framework import permissions

from apps.apikeys.models import ApiKey

from .tokens import RecipientToken

INBOX_CHANNEL = "in_app"  # the inbox holds in_app notifications: keys restricted to other channels may not use it


class InboxAccess(permissions.BasePermission):
    """An API key with one of the view's scopes that may use in_app notifications, or a recipient token
    for the inbox in the URL.

    Views set ``api_key_scopes = {"GET": (...), "POST": (...)}`` (any one
    suffices), or ``api_key_all_of = {"POST": ((...), (...))}`` (one of each), and ``allow_recipient_token``.
    """

    message = "This credential may not use this inbox."

    def has_permission(self, request, view) -> bool:
        auth = request.auth
        if isinstance(auth, ApiKey):
            # Each group: the key needs one of its scopes (``api_key_all_of``: every group must be met).
            groups = getattr(view, "api_key_all_of", {}).get(request.method) or \
                (getattr(view, "api_key_scopes", {}).get(request.method, ()),)
            for scopes in groups:
                if not any(auth.has_scope(s) for s in scopes):
                    self.message = f"This API key needs one of the scopes: {', '.join(scopes)}."
                    return False
            if not auth.allows_channel(INBOX_CHANNEL):
                self.message = f"This API key may not use {INBOX_CHANNEL} notifications."
                return False
            return True
        if isinstance(auth, RecipientToken):
            if not getattr(view, "allow_recipient_token", False):
                self.message = "A recipient token cannot use this endpoint."
                return False
            external_id = view.kwargs.get("external_id")
            if external_id is not None and external_id != auth.external_id:
                self.message = "This recipient token is for another recipient's inbox."
                return False
            return True
        return False
