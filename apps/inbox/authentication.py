from rest_framework import authentication, exceptions

from apps.apikeys.authentication import ApiKeyAuthentication

from .tokens import InvalidToken, looks_like_token, recipient_token_verify


class ApiKeyOrRecipientTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <api key | recipient token>``.

    ``request.auth`` is an ``ApiKey`` or a ``RecipientToken``; expired,
    tampered or unknown credentials are a 401. With ``allow_query_token`` on the
    view, ``?token=`` is accepted too (EventSource cannot set headers).
    """

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if header:
            parts = header.split()
            if len(parts) != 2 or parts[0].lower() != "bearer":
                raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <credential>'.")
            raw = parts[1]
        else:
            view = request.parser_context.get("view") if request.parser_context else None
            raw = request.query_params.get("token") if getattr(view, "allow_query_token", False) else None
            if not raw:
                return None
        if looks_like_token(raw):
            try:
                return (None, recipient_token_verify(raw))
            except InvalidToken as exc:
                raise exceptions.AuthenticationFailed(str(exc)) from exc
        return ApiKeyAuthentication().authenticate(request)

    def authenticate_header(self, request):
        return self.keyword


try:
    from drf_spectacular.extensions import OpenApiAuthenticationExtension

    class _InboxAuthScheme(OpenApiAuthenticationExtension):
        target_class = "apps.inbox.authentication.ApiKeyOrRecipientTokenAuthentication"
        name = "apiKeyOrRecipientToken"

        def get_security_definition(self, auto_schema):
            return {"type": "http", "scheme": "bearer",
                    "description": "An API key, or a recipient token from POST /api/v1/recipients/{id}/token/."}
except ImportError:  # pragma: no cover - drf-spectacular is a base requirement
    pass
