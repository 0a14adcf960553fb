"""What every ModelAdmin of the shop shares."""

from django.contrib import admin
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest

# Lookups a change list's URL may not filter by. A regular expression PostgreSQL cannot compile
# is a DataError (a 500), and any pattern is a way to make it work hard; the others need
# extensions the database does not have (a ProgrammingError).
REFUSED_URL_LOOKUPS = frozenset(
    {
        "regex",
        "iregex",
        "unaccent",
        "trigram_similar",
        "trigram_word_similar",
        "trigram_strict_word_similar",
    }
)


def url_lookup_allowed(lookup: str, value: str) -> bool:
    """Whether a change list may filter by ``lookup`` (``sku__iexact``) = ``value`` taken from
    its URL: not by a refused lookup, nor by a value holding NUL, which PostgreSQL text cannot
    hold (a DataError, whatever the field)."""
    if "\x00" in lookup or "\x00" in value:
        return False
    return REFUSED_URL_LOOKUPS.isdisjoint(lookup.split(LOOKUP_SEP))


class ShopModelAdmin(admin.ModelAdmin):
    """The base of the shop's ModelAdmins: a hand-made change list URL whose filter PostgreSQL
    cannot run (``?sku__regex=(``, ``?status__exact=%00``) is refused as a 400, which Django
    makes of a refused lookup, rather than failing as a 500."""

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        if not url_lookup_allowed(lookup, value):
            return False
        return super().lookup_allowed(lookup, value, request)
