from rest_framework import permissions

from apps.apikeys.models import ApiKey

from .tokens import RecipientToken


class InboxAccess(permissions.BasePermission):
    """An API key with one of the view's scopes, or a recipient token for the inbox in the URL.

    Views set ``api_key_scopes = {"GET": (...), "POST": (...)}`` (any one
    suffices) and ``allow_recipient_token``.
    """

    message = "This credential may not use this inbox."

    def has_permission(self, request, view) -> bool:
        auth = request.auth
        if isinstance(auth, ApiKey):
            scopes = getattr(view, "api_key_scopes", {}).get(request.method, ())
            if not any(auth.has_scope(s) for s in scopes):
                self.message = f"This API key needs one of the scopes: {', '.join(scopes)}."
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
