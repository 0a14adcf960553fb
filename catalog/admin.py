from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from catalog.embeddings import current_model_name, text_hash
from catalog.import_files import CatalogFileError, FileColumns, csv_lines, read_catalog_file
from catalog.knowledge_rows import KNOWLEDGE_COLUMNS, TOPICS, article_file_row
from catalog.models import Category, KnowledgeArticle, KnowledgePassage, Product, name_order
from catalog.product_rows import PRODUCT_COLUMNS, product_file_row
from catalog.selectors import EmbeddingState, embedded_rows_in_state
from catalog.services import (
    CatalogImportError,
    ImportReport,
    category_renamed,
    embeddings_refresh_on_commit,
    knowledge_import,
    product_import,
)

# Rows read per query while an export streams: memory stays flat however many are selected.
EXPORT_CHUNK_ROWS = 2000
# Row errors an import page shows; the rest are counted. A page of 100k errors helps no one.
SHOWN_ROW_ERRORS = 50


def _shown_row_errors(errors: list[str]) -> list[str]:
    shown = errors[:SHOWN_ROW_ERRORS]
    if more := len(errors) - len(shown):
        shown.append(f"and {more} more invalid row(s)")
    return shown


class InStockFilter(admin.SimpleListFilter):
    title = "stock"
    parameter_name = "in_stock"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "In stock"), ("no", "Sold out")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Product]) -> QuerySet[Product]:
        if self.value() == "yes":
            return queryset.filter(stock__gt=0)
        if self.value() == "no":
            return queryset.filter(stock=0)
        return queryset


class EmbeddingStateFilter(admin.SimpleListFilter):
    title = "embedding"
    parameter_name = "embedding"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            (EmbeddingState.CURRENT, "Current"),
            (EmbeddingState.STALE, "Text changed since"),
            (EmbeddingState.OTHER, "Other model"),
            (EmbeddingState.MISSING, "Missing"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        try:
            state = EmbeddingState(self.value() or "")
        except ValueError:  # no state chosen, or one that is not ours
            return queryset
        return embedded_rows_in_state(queryset, state)


class CatalogImportForm(forms.Form):
    file = forms.FileField(help_text="A .csv or .json file with the columns above.")
    skip_invalid = forms.BooleanField(
        required=False, help_text="Load the valid rows even when some rows are invalid."
    )


class ImportableModelAdmin(admin.ModelAdmin):
    """An "Import CSV / JSON" page beside the change list, for staff who may both add and
    change rows (an import creates rows and overwrites existing ones), and an action that
    exports the selected rows in the same columns."""

    change_list_template = "admin/catalog/change_list_with_import.html"
    import_columns: FileColumns
    # The service that upserts the file's rows: ``(rows=..., skip_invalid=...)``.
    rows_import: Callable[..., ImportReport]
    # What the page says about the file, after its columns.
    import_help: str
    # A row as the import file has it (``export_csv``).
    file_row: Callable[[Any], dict[str, str]]
    actions = ["export_csv"]

    def _import_url_name(self) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_import"

    def get_urls(self) -> list[Any]:
        import_url = path(
            "import/", self.admin_site.admin_view(self.import_view), name=self._import_url_name()
        )
        return [import_url, *super().get_urls()]

    def has_import_permission(self, request: HttpRequest) -> bool:
        return self.has_add_permission(request) and self.has_change_permission(request)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        may_import = self.has_import_permission(request)
        extra_context = {
            **(extra_context or {}),
            "import_url": reverse(f"admin:{self._import_url_name()}") if may_import else None,
        }
        return super().changelist_view(request, extra_context)

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = CatalogImportForm(request.POST or None, request.FILES or None)
        errors: list[str] = []
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                rows = read_catalog_file(upload, upload.name, columns=self.import_columns)
                report = self.rows_import(rows=rows, skip_invalid=form.cleaned_data["skip_invalid"])
            except CatalogFileError as exc:
                errors = [str(exc)]
            except CatalogImportError as exc:
                errors = [str(exc), *_shown_row_errors(exc.report.errors)]
            else:
                level = messages.WARNING if report.errors else messages.SUCCESS
                self.message_user(request, f"Imported {upload.name}: {report.summary()}", level)
                for error in _shown_row_errors(report.errors):
                    self.message_user(request, error, messages.WARNING)
                changelist = f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"
                return HttpResponseRedirect(reverse(changelist))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Import {self.opts.verbose_name_plural}",
            "form": form,
            "errors": errors,
            "opts": self.opts,
            "columns": ", ".join(self.import_columns.names),
            "import_help": self.import_help,
        }
        return TemplateResponse(request, "admin/catalog/import.html", context)

    @admin.action(description="Export selected rows as CSV (to edit and import back)")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Any]) -> StreamingHttpResponse:
        rows = map(self.file_row, queryset.order_by("pk").iterator(chunk_size=EXPORT_CHUNK_ROWS))
        response = StreamingHttpResponse(
            csv_lines(rows, self.import_columns), content_type="text/csv; charset=utf-8"
        )
        filename = f"{self.opts.model_name}-{timezone.localtime():%Y%m%d-%H%M%S}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class EmbeddedAdminMixin:
    embedding_kind: str

    # What serves search only: no page shows it, and the embedding alone is ~1.5 KB a row to
    # read from the TOAST table and parse.
    deferred_fields: tuple[str, ...] = ("embedding", "search_vector")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        rows = super().get_queryset(request)  # type: ignore[misc]
        return rows.defer(*self.deferred_fields)

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        """No filtering by a URL's lookup on arrays, vectors or the search document: the value
        would reach PostgreSQL as it is ("?tags=x" is a malformed array, a 500). A refused
        lookup is a 400."""
        if lookup.split("__")[0] in ("tags", "embedding_half", "search_vector"):
            return False
        return super().lookup_allowed(lookup, value, request)  # type: ignore[misc]

    @admin.display(description="embedding", boolean=True)
    def embedding_ok(self, obj: Product | KnowledgeArticle) -> bool:
        """Made by the configured model from the row's text as it is now."""
        return obj.embedding_model == current_model_name() and (
            obj.embedding_text_hash == text_hash(obj.embedding_text())
        )

    @admin.action(description="Re-embed selected rows", permissions=["change"])
    def re_embed(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        embeddings_refresh_on_commit(kind=self.embedding_kind, ids=ids, force=True)
        self.message_user(request, f"Queued {len(ids)} row(s) for embedding.")  # type: ignore[attr-defined]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)  # type: ignore[misc]
        embeddings_refresh_on_commit(kind=self.embedding_kind, ids=[obj.pk])


def name_column(field: str) -> Callable[[Any, Any], str]:
    """A list column of ``field`` whose header sorts as the catalogue sorts names
    (``name_order``), not by the column's own collation."""

    @admin.display(description=field, ordering=name_order(field))
    def column(model_admin: Any, obj: Any) -> str:
        return getattr(obj, field)

    return column


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["category_name", "slug"]
    category_name = name_column("name")
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}

    def save_model(self, request: HttpRequest, obj: Category, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "name" in form.changed_data:
            category_renamed(category=obj)


class ProductAdminForm(forms.ModelForm):
    def _get_validation_exclusions(self) -> set[str]:
        # A private ModelForm hook (the one that lets a field skip model validation), which
        # django-stubs does not declare.
        exclusions = set(super()._get_validation_exclusions())  # type: ignore[misc]
        if self.instance.pk is not None and "sku" not in self.changed_data:
            # As product_update: a sku saved before migration 0007 checked skus stays editable
            # until it is changed.
            exclusions.add("sku")
        return exclusions


@admin.register(Product)
class ProductAdmin(EmbeddedAdminMixin, ImportableModelAdmin):
    form = ProductAdminForm
    embedding_kind = "products"
    deferred_fields = (*EmbeddedAdminMixin.deferred_fields, "embedding_half")
    list_display = ["sku", "product_name", "category", "price", "currency", "stock", "is_active"]
    list_display += ["embedding_ok"]
    product_name = name_column("name")
    list_editable = ["price", "stock", "is_active"]
    list_filter = ["category", InStockFilter, "is_active", EmbeddingStateFilter]
    list_select_related = ["category"]
    search_fields = ["sku", "name", "description", "origin", "floral_source", "tags"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["embedding_model", "embedded_at", "created_at", "updated_at"]
    actions = ["re_embed", "export_csv"]
    import_columns = PRODUCT_COLUMNS
    rows_import = staticmethod(product_import)
    file_row = staticmethod(product_file_row)
    import_help = (
        "tags are separated by semicolons. Rows are matched by sku; category is a category's"
        " name (in any case) or slug, and a category it names neither way is created; an"
        " existing product keeps the values of columns the file leaves out."
    )


class KnowledgePassageInline(admin.TabularInline):
    """What the knowledge search ranks an article by besides its own embedding, as the
    embedding task last wrote it: shown to whoever may see the article, never edited here."""

    model = KnowledgePassage
    fields = ("position", "text")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "passages the search reads (as last embedded)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[KnowledgePassage]:
        return super().get_queryset(request).defer("embedding")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        article_admin = self.admin_site.get_model_admin(self.parent_model)
        return article_admin.has_view_or_change_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(KnowledgeArticle)
class KnowledgeArticleAdmin(EmbeddedAdminMixin, ImportableModelAdmin):
    embedding_kind = "knowledge"
    list_display = ["article_title", "topic", "is_published", "updated_at", "embedding_ok"]
    article_title = name_column("title")
    list_filter = ["topic", "is_published", EmbeddingStateFilter]
    search_fields = ["title", "body"]
    prepopulated_fields = {"slug": ["title"]}
    readonly_fields = ["embedding_model", "embedded_at", "created_at", "updated_at"]
    actions = ["re_embed", "export_csv"]
    import_columns = KNOWLEDGE_COLUMNS
    rows_import = staticmethod(knowledge_import)
    file_row = staticmethod(article_file_row)
    import_help = (
        f"topic is one of {', '.join(TOPICS)}; is_published is true or false (true when left"
        " out). Rows are matched by slug, or by a slug made from the title where the file has"
        " none; an existing article keeps the values of columns the file leaves out."
    )

    def get_inlines(self, request: HttpRequest, obj: KnowledgeArticle | None) -> list[Any]:
        return [KnowledgePassageInline] if obj else []  # a new article has no passages yet
