import logging
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import get_deleted_objects
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.search import SearchQuery
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Field, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from beemanhoney.common.admin import DELETE_PAGE_ROWS_LISTED, ShopModelAdmin, more_rows_line
from catalog.embeddings import current_model_name, text_hash
from catalog.import_files import CatalogFileError, FileColumns, csv_lines, read_catalog_file
from catalog.knowledge_rows import KNOWLEDGE_COLUMNS, TOPICS, article_file_row
from catalog.models import (
    MAX_TAGS,
    SEARCH_CONFIG,
    TAG_MAX_LENGTH,
    Category,
    KnowledgeArticle,
    KnowledgePassage,
    Product,
    lowered_without_accents,
    name_order,
    tag_stored,
    tags_normalised,
)
from catalog.product_rows import PRODUCT_COLUMNS, product_file_row
from catalog.query_keywords import WORD
from catalog.selectors import EmbeddingState, embedded_rows_in_state
from catalog.services import (
    CatalogImportError,
    EmbeddingsNotQueued,
    ImportReport,
    category_update,
    embeddings_queue,
    embeddings_refresh_on_commit,
    knowledge_article_update,
    knowledge_import,
    product_import,
    product_update,
)

logger = logging.getLogger(__name__)

# Rows read per query while an export streams: memory stays flat however many are selected.
EXPORT_CHUNK_ROWS = 2000
# Row errors an import page shows; the rest are counted. A page of 100k errors helps no one.
SHOWN_ROW_ERRORS = 50
# The largest file, and the most rows, the admin imports: one request reads the whole file and
# imports it before it answers (10,000 products took 12 s; 100,000 outlast a proxy's timeout,
# and the import is rolled back). The management commands take any file.
IMPORT_MAX_MEGABYTES = 2
IMPORT_MAX_BYTES = IMPORT_MAX_MEGABYTES * 1024 * 1024
IMPORT_MAX_ROWS = 5000


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
        return embedded_rows_in_state(rows=queryset, state=state)


def _import_command_hint(command: str) -> str:
    return f"import it with python manage.py {command} FILE, which takes a file of any size"


class CatalogImportForm(forms.Form):
    file = forms.FileField()
    skip_invalid = forms.BooleanField(
        required=False, help_text="Load the valid rows even when some rows are invalid."
    )

    def __init__(self, *args: Any, command: str, **kwargs: Any) -> None:
        """``command``: the management command that imports the same files, whatever their
        size (``import_catalog``)."""
        super().__init__(*args, **kwargs)
        self.command = command
        self.fields["file"].help_text = (
            f"A .csv or .json file with the columns above, of at most {IMPORT_MAX_MEGABYTES} MB"
            f" and {IMPORT_MAX_ROWS:,} rows; for a larger one, use python manage.py {command}"
            " FILE."
        )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > IMPORT_MAX_BYTES:
            raise ValidationError(
                f"The file is larger than {IMPORT_MAX_MEGABYTES} MB, the most the admin imports:"
                f" {_import_command_hint(self.command)}."
            )
        return upload


class ImportableModelAdmin(ShopModelAdmin):
    """An "Import CSV / JSON" page beside the change list, for staff who may both add and
    change rows (an import creates rows and overwrites existing ones), and an action that
    exports the selected rows in the same columns."""

    change_list_template = "admin/catalog/change_list_with_import.html"
    import_columns: FileColumns
    # The service that upserts the file's rows: ``(rows=..., skip_invalid=...,
    # **import_options(request))``.
    rows_import: Callable[..., ImportReport]
    # What the page says about the file, after its columns.
    import_help: str
    # A row as the import file has it (``export_csv``).
    file_row: Callable[[Any], dict[str, str]]
    # The management command that imports the same files, whatever their size.
    import_command: str
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

    def import_options(self, request: HttpRequest) -> dict[str, Any]:
        """What ``rows_import`` is given besides the rows for this user: what the file may
        write that only some staff may."""
        return {}

    def _file_import(
        self, request: HttpRequest, upload: Any, *, skip_invalid: bool
    ) -> ImportReport | list[str]:
        """The uploaded file imported, or why it was not: the errors the page shows."""
        try:
            rows = read_catalog_file(upload, upload.name, columns=self.import_columns)
        except CatalogFileError as exc:
            return [str(exc)]
        if len(rows) > IMPORT_MAX_ROWS:
            return [
                f"the file has {len(rows):,} rows, more than the {IMPORT_MAX_ROWS:,} the admin"
                f" imports: {_import_command_hint(self.import_command)}"
            ]
        try:
            return self.rows_import(
                rows=rows, skip_invalid=skip_invalid, **self.import_options(request)
            )
        except CatalogImportError as exc:
            return [str(exc), *_shown_row_errors(exc.report.errors)]

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
        form = CatalogImportForm(
            request.POST or None, request.FILES or None, command=self.import_command
        )
        errors: list[str] = []
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            outcome = self._file_import(
                request, upload, skip_invalid=form.cleaned_data["skip_invalid"]
            )
            if isinstance(outcome, ImportReport):
                level = messages.WARNING if outcome.errors else messages.SUCCESS
                self.message_user(request, f"Imported {upload.name}: {outcome.summary()}", level)
                for error in _shown_row_errors(outcome.errors):
                    self.message_user(request, error, messages.WARNING)
                changelist = f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"
                return HttpResponseRedirect(reverse(changelist))
            errors = outcome
        context = {
            **self.admin_site.each_context(request),
            "title": f"Import {self.opts.verbose_name_plural}",
            "subpage": "Import",
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


class ShownValuesAdminMixin:
    """Saves what the staff changed on the page, and only that. Django tells a changed field
    by comparing what is posted with the row as it is when the form is posted, so a value
    another writer (the API, an import, a colleague) saved after the page was shown looked
    changed, and the page's older value was written back over it: a product's stock restored
    to 10 after an order left 3. Each field here also posts the value the page showed
    (``show_hidden_initial``), a field counts as changed only when it differs from that, and
    an existing row is saved with those fields alone (``changes_save``). The product list's
    editable columns are these forms too, and the list saves only its rows that changed."""

    def formfield_for_dbfield(
        self, db_field: Field, request: HttpRequest, **kwargs: Any
    ) -> forms.Field | None:
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)  # type: ignore[misc]
        if formfield is not None:
            formfield.show_hidden_initial = True
        return formfield

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)  # type: ignore[misc]
        elif form.changed_data:
            self.changes_save(obj, fields=form.changed_data)

    def changes_save(self, obj: Any, *, fields: list[str]) -> None:
        """Save the ``fields`` of ``obj`` that the staff changed, and no other: through the
        row's update service (``update_fields``), which validates them and queues the row's
        embedding, as ``EmbeddedAdminMixin`` leaves a change to it."""
        raise NotImplementedError


class EmbeddedAdminMixin:
    embedding_kind: str

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        """Without what serves search only: no page shows it, and the embedding alone is
        ~1.5 KB a row to read from the TOAST table and parse."""
        rows = super().get_queryset(request)  # type: ignore[misc]
        return rows.defer(*rows.model.search_only_fields())

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
        try:
            queued = embeddings_queue(kind=self.embedding_kind, ids=ids, force=True)
        except EmbeddingsNotQueued as error:
            logger.exception("catalog.re_embed_not_queued", extra={"kind": self.embedding_kind})
            self.message_user(  # type: ignore[attr-defined]
                request,
                f"Queued {error.queued} of {len(ids)} row(s) for embedding: the task queue cannot"
                " be reached. Try again, or run backfill_embeddings --force.",
                messages.ERROR,
            )
            return
        self.message_user(request, f"Queued {queued} row(s) for embedding.")  # type: ignore[attr-defined]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)  # type: ignore[misc]
        # A change is saved by the row's update service, which queues it (``changes_save``).
        if not change:
            embeddings_refresh_on_commit(kind=self.embedding_kind, ids=[obj.pk])


def name_column(field: str) -> Callable[[Any, Any], str]:
    """A list column of ``field`` whose header sorts as the catalogue sorts names
    (``name_order``), not by the column's own collation."""

    @admin.display(description=field, ordering=name_order(field))
    def column(model_admin: Any, obj: Any) -> str:
        return getattr(obj, field)

    return column


@admin.register(Category)
class CategoryAdmin(ShownValuesAdminMixin, ShopModelAdmin):
    list_display = ["category_name", "slug"]
    category_name = name_column("name")
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
        """A category with products is not deleted (``PROTECT``): the page names a few of them,
        read by one bounded query, and counts the others; Django's own page collects them all
        (seconds for a category of 100,000 products)."""
        products = Product.objects.filter(category__in=objs).order_by("pk")
        shown = list(products[:DELETE_PAGE_ROWS_LISTED])
        if not shown:
            return super().get_deleted_objects(objs, request)
        listed = get_deleted_objects(shown, request, self.admin_site)[0]
        protected = [row for row in listed if not isinstance(row, list)]
        if (others := products.count() - len(shown)) > 0:
            protected.append(more_rows_line(others))
        return [], {}, set(), protected

    def changes_save(self, obj: Category, *, fields: list[str]) -> None:
        # The row as stored, so that ``category_update`` sees a rename as one.
        stored = Category.objects.get(pk=obj.pk)
        category_update(category=stored, **{name: getattr(obj, name) for name in fields})


def _one_tag_field() -> Field:
    """The model field ``Product.tags`` holds each tag in."""
    tags = Product._meta.get_field("tags")
    assert isinstance(tags, ArrayField)
    return tags.base_field


class TagsField(forms.CharField):
    """A product's tags as staff type them, separated by commas. Blank ones (a trailing comma,
    two commas in a row) are dropped, as the model drops them, and each is checked by the
    model's own validators, whose messages (``tag_validator``'s "a tag cannot hold ',' or ';'",
    as the API and the import say) are shown whole, after the tag."""

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list | tuple) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        if isinstance(value, list | tuple):
            value = ",".join(value)
        typed = (super().to_python(value) or "").split(",")
        # The tags the model's clean() would keep, counted as such.
        return tags_normalised(typed)

    def run_validators(self, value: Any) -> None:
        # Each tag by the form's own validators (no NUL) and the model's.
        one_tag = _one_tag_field()
        errors = []
        for tag in value:
            try:
                super().run_validators(tag)
                one_tag.run_validators(tag)
            except ValidationError as error:
                errors += [f"“{tag}”: {message}" for message in error.messages]
        if len(value) > MAX_TAGS:
            errors.append(f"{len(value)} tags; a product has at most {MAX_TAGS}.")
        if errors:
            raise ValidationError(errors)


def word_starts_query(text: str) -> SearchQuery | None:
    """Each word of ``text`` as the start of a word of the searched text ("clov" finds
    "clover"), without its accents as the search vector holds it; None when it has no word."""
    words = WORD.findall(lowered_without_accents(text))
    if not words:
        return None
    starts = " & ".join(f"'{word}':*" for word in words)
    return SearchQuery(starts, search_type="raw", config=SEARCH_CONFIG)


class ProductAdminForm(forms.ModelForm):
    # The value the page showed is posted too (ShownValuesAdminMixin: the other fields get it
    # from formfield_for_dbfield, which a declared field does not go through).
    tags = TagsField(
        required=False,
        show_hidden_initial=True,
        help_text=f"Separated by commas; at most {MAX_TAGS}. Saved lower-cased.",
    )

    def _get_validation_exclusions(self) -> set[str]:
        # A private ModelForm hook (the one that lets a field skip model validation), which
        # django-stubs does not declare.
        exclusions = set(super()._get_validation_exclusions())  # type: ignore[misc]
        if self.instance.pk is not None:
            # As product_update: a sku saved before migration 0007 checked skus, or a currency
            # withdrawn since (0013), stays editable until it is changed.
            exclusions.update({"sku", "currency"} - set(self.changed_data))
        return exclusions


@admin.register(Product)
class ProductAdmin(EmbeddedAdminMixin, ShownValuesAdminMixin, ImportableModelAdmin):
    form = ProductAdminForm
    embedding_kind = "products"
    list_display = ["sku", "product_name", "category", "price", "currency", "stock", "is_active"]
    list_display += ["embedding_ok"]
    product_name = name_column("name")
    list_editable = ["price", "stock", "is_active"]
    list_filter = ["category", InStockFilter, "is_active", EmbeddingStateFilter]
    list_select_related = ["category"]
    # Searched as ``get_search_results`` says; this only shows the search box.
    search_fields = ["sku"]
    search_help_text = (
        "The start of a sku, a tag, or the start of each word of a product's name, floral"
        ' source, origin or description ("clov" finds clover).'
    )
    # By what an index orders, and by stock, which staff sort to see what runs out first (a
    # sort of every product: 0.13 s of a 0.42 s page at 100,000 products, as category or
    # active would cost; those two are filters instead).
    sortable_by = ["sku", "product_name", "price", "stock"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["embedding_model", "embedded_at", "created_at", "updated_at"]
    actions = ["re_embed", "export_csv"]
    import_columns = PRODUCT_COLUMNS
    rows_import = staticmethod(product_import)
    file_row = staticmethod(product_file_row)
    import_command = "import_catalog"
    import_help = (
        "tags are separated by semicolons. Rows are matched by sku; category is a category's"
        " name (in any case) or slug, and a category it names neither way is created (by staff"
        " who may add categories); an existing product keeps the values of columns the file"
        " leaves out."
    )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Product], search_term: str
    ) -> tuple[QuerySet[Product], bool]:
        """A sku by its start in any case, a tag whole, and words by their starts in the
        name, floral source, origin and description (the search vector), each by its index.
        Django's search compared six columns with LIKE '%term%', reading every product: 0.45
        to 0.7 s a search at 100,000 products."""
        term = search_term.strip()
        if not term:
            return queryset, False
        found = Q(sku__istartswith=term)
        # A longer tag would be cut to the column's length, and match the tags it starts.
        if len(tag := tag_stored(term)) <= TAG_MAX_LENGTH:
            found |= Q(tags__contains=[tag])
        if (words := word_starts_query(term)) is not None:
            found |= Q(search_vector=words)
        return queryset.filter(found), False

    def import_options(self, request: HttpRequest) -> dict[str, Any]:
        """The import creates the categories its rows name that do not exist: only staff who
        may add categories (the category admin's add page is theirs alone) may import a file
        naming one. Staff who may not are told which (``product_import``)."""
        category_admin = self.admin_site.get_model_admin(Category)
        return {"may_create_categories": category_admin.has_add_permission(request)}

    def changes_save(self, obj: Product, *, fields: list[str]) -> None:
        product_update(product=obj, update_fields=fields)


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
class KnowledgeArticleAdmin(EmbeddedAdminMixin, ShownValuesAdminMixin, ImportableModelAdmin):
    embedding_kind = "knowledge"
    list_display = ["article_title", "topic", "is_published", "updated_at", "embedding_ok"]
    article_title = name_column("title")
    list_filter = ["topic", "is_published", EmbeddingStateFilter]
    search_fields = ["title", "body"]
    prepopulated_fields = {"slug": ["title"]}
    readonly_fields = ["embedding_model", "embedded_at", "created_at", "updated_at"]
    actions = ["re_embed", "export_csv"]
    import_columns = KNOWLEDGE_COLUMNS
    import_command = "import_knowledge"
    rows_import = staticmethod(knowledge_import)
    file_row = staticmethod(article_file_row)
    import_help = (
        f"topic is one of {', '.join(TOPICS)}; is_published is true or false (true when left"
        " out). Rows are matched by slug, or by a slug made from the title where the file has"
        " none; an existing article keeps the values of columns the file leaves out."
    )

    def get_inlines(self, request: HttpRequest, obj: KnowledgeArticle | None) -> list[Any]:
        return [KnowledgePassageInline] if obj else []  # a new article has no passages yet

    def changes_save(self, obj: KnowledgeArticle, *, fields: list[str]) -> None:
        knowledge_article_update(article=obj, update_fields=fields)
