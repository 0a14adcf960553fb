"""What drf-spectacular is told beyond what it reads from the views and serializers."""

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework.permissions import SAFE_METHODS

from beemanhoney.common.permissions import IsStaffWithModelPermissionOrReadOnly


class AutoSchema(SpectacularAutoSchema):
    def get_auth(self) -> list[dict[str, list[str]]]:
        """A catalogue read needs no credentials: the schema says so (``{}`` among its security
        requirements), as drf-spectacular says it of DRF's own read-only permissions."""
        auths = super().get_auth()
        public_read = self.method in SAFE_METHODS and any(
            isinstance(permission, IsStaffWithModelPermissionOrReadOnly)
            for permission in self.view.get_permissions()
        )
        if public_read and {} not in auths:
            auths.append({})
        return auths


def partial_bodies_without_defaults(
    result: dict[str, Any], generator: object, request: object, public: bool
) -> dict[str, Any]:
    """A PATCH changes the fields it sends alone. The defaults its body's schema would inherit
    from the create's (``is_active`` true, ``stock`` 0) tell generated clients to send them,
    changing fields the caller never touched: they are left out."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.startswith("Patched"):
            for field in component.get("properties", {}).values():
                field.pop("default", None)
    return result
