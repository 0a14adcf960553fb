"""What drf-spectacular is told beyond what it reads from the views and serializers."""

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework.permissions import SAFE_METHODS

from beemanhoney.common.permissions import IsStaffWithModelPermissionOrReadOnly
from beemanhoney.common.serializers import PlainDecimalField


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


class PlainDecimalFieldExtension(OpenApiSerializerFieldExtension):
    """The decimals ``PlainDecimalField`` takes: zeros past its places too ("12.500"), and no
    minus sign where its minimum is zero (drf-spectacular's pattern said the reverse of both)."""

    target_class = PlainDecimalField

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        field: PlainDecimalField = self.target
        schema: dict[str, Any] = auto_schema._map_serializer_field(
            field, direction, bypass_extensions=True
        )
        if "pattern" in schema:
            sign = "" if field.min_value is not None and field.min_value >= 0 else "-?"
            whole = field.max_whole_digits
            # A digit first, or a point and a digit: "" and "." are no number.
            digits = rf"(?=\.?\d)\d{{0,{whole}}}(?:\.\d{{0,{field.decimal_places}}}0*)?"
            schema["pattern"] = rf"^{sign}{digits}$"
        return schema
