"""Authenticator of the template tap: the template's OAuth2 class with Flex's request body."""

from __future__ import annotations

from singer_sdk.authenticators import OAuthAuthenticator, SingletonMeta


# As in the template: SingletonMeta makes every stream reuse one authenticator (one token).
class FlexAuthenticator(OAuthAuthenticator, metaclass=SingletonMeta):
    """Client-credentials token for GreenLake, the one TODO of the template's auth.py."""

    @property
    def oauth_request_body(self) -> dict:
        """Form body of GreenLake's client-credentials token request."""
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
