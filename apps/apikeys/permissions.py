from rest_framework import permissions

from .models import ApiKey


class HasScope(permissions.BasePermission):
    """Requires an API key; views name the scope they need in ``required_scope`` (or per method in
    ``required_scopes``); a tuple of scopes needs every one of them."""

    message = "This API key lacks the scope this endpoint needs."

    def has_permission(self, request, view) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return False
        scope = getattr(view, "required_scopes", {}).get(request.method) or getattr(view, "required_scope", None)
        if scope is None:
            return True
        if isinstance(scope, tuple):
            return all(key.has_scope(s) for s in scope)
        return key.has_scope(scope)
