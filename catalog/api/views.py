from decimal import Decimal
from typing import Any

from django.core.validators import slug_re
from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from beemanhoney.common.exceptions import error_responses
from beemanhoney.common.numbers import INTEGER_COLUMN_MAX
from beemanhoney.common.pagination import PAGE_PARAMETERS, StandardPagination, page_of
from beemanhoney.common.permissions import IsStaffWithModelPermissionOrReadOnly, staff_may_view
from beemanhoney.common.preconditions import IF_MATCH, locked_if_match, representation_etag
from beemanhoney.common.serializers import (
    PlainDecimalField,
    PlainIntegerField,
    QueryParamsSerializer,
    StrictSerializer,
)
from catalog import selectors, services
from catalog.currencies import validate_currency
from catalog.models import (
    ARTICLE_BODY_MAX_LENGTH,
    MAX_TAGS,
    PRODUCT_DESCRIPTION_MAX_LENGTH,
    TAG_MAX_LENGTH,
    Category,
    KnowledgeArticle,
    Product,
    sku_validator,
    tag_stored,
    tag_validator,
)

MAX_QUERY_LENGTH = 300


class ProductOutputSerializer(serializers.Serializer):
    # The fields describe the output (the API schema is made from them); ``product_output``
    # renders it.
    sku = serializers.CharField()
    slug = serializers.SlugField()
    name = serializers.CharField()
    category = serializers.SlugField(source="category.slug")
    price = serializers.DecimalField(max_digits=10, decimal_places=2)
    currency = serializers.CharField()
    weight_grams = serializers.IntegerField()
    stock = serializers.IntegerField()
    in_stock = serializers.BooleanField()
    tags = serializers.ListField(child=serializers.CharField())
    origin = serializers.CharField()
    floral_source = serializers.CharField()
    description = serializers.CharField()

    def to_representation(self, product: Product) -> dict[str, Any]:
        return product_output(product)


_PRICE = serializers.DecimalField(max_digits=10, decimal_places=2)


def product_output(product: Product) -> dict[str, Any]:
    """What ``ProductOutputSerializer`` renders, by hand: DRF's walk over its fields took ~1 ms
    of a page of 20, and a serializer per page another ~0.35 ms plus the reference cycles its
    fields leave for the garbage collector. Tests hold this to DRF's own output."""
    return {
        "sku": product.sku,
        "slug": product.slug,
        "name": product.name,
        "category": product.category.slug,
        "price": _PRICE.to_representation(product.price),
        "currency": product.currency,
        "weight_grams": product.weight_grams,
        "stock": product.stock,
        "in_stock": product.in_stock,
        "tags": list(product.tags),
        "origin": product.origin,
        "floral_source": product.floral_source,
        "description": product.description,
    }


class ProductStaffOutputSerializer(ProductOutputSerializer):
    """A product as staff see it (the answer to a write, and to their ``GET``): with whether
    customers see it."""

    is_active = serializers.BooleanField()

    def to_representation(self, product: Product) -> dict[str, Any]:
        return {**product_output(product), "is_active": product.is_active}


class CategorySlugField(serializers.SlugRelatedField):
    """A category by its slug. Text no slug can hold (a NUL, say) is "does not exist" too,
    rather than a query PostgreSQL refuses."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(slug_field="slug", queryset=Category.objects.all(), **kwargs)

    def to_internal_value(self, data: Any) -> Category:
        if isinstance(data, str) and not slug_re.match(data):
            self.fail("does_not_exist", slug_name=self.slug_field, value=data)
        return super().to_internal_value(data)


class TagsField(serializers.ListField):
    """A product's tags. DRF keys a list's errors by item (``{"1": [...]}``), which the API's
    error shape, a list of messages for each field, cannot hold: they are "Tag 2: ..."."""

    def to_internal_value(self, data: Any) -> list[Any]:
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, dict):
                raise
            raise serializers.ValidationError(
                [
                    serializers.ErrorDetail(
                        f"Tag {int(index) + 1}: {message}", code=getattr(message, "code", None)
                    )
                    for index, messages in exc.detail.items()
                    for message in messages
                ]
            ) from exc


class ProductInputSerializer(StrictSerializer):
    read_only_names = ("sku", "slug", "in_stock")

    name = serializers.CharField(max_length=200)
    category = CategorySlugField()
    description = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=PRODUCT_DESCRIPTION_MAX_LENGTH
    )
    price = PlainDecimalField(max_digits=10, decimal_places=2, min_value=Decimal(0))
    currency = serializers.CharField(required=False, default="GBP", validators=[validate_currency])
    weight_grams = PlainIntegerField(
        min_value=0, max_value=INTEGER_COLUMN_MAX, required=False, default=0
    )
    stock = PlainIntegerField(min_value=0, max_value=INTEGER_COLUMN_MAX, required=False, default=0)
    is_active = serializers.BooleanField(required=False, default=True)
    tags = TagsField(
        child=serializers.CharField(max_length=TAG_MAX_LENGTH, validators=[tag_validator]),
        required=False,
        default=list,
        max_length=MAX_TAGS,
    )
    origin = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    floral_source = serializers.CharField(
        max_length=120, required=False, allow_blank=True, default=""
    )


class TagFilterField(serializers.ListField):
    """Tags to filter by, every one required: repeated (``tags=raw&tags=british``),
    comma-separated (``tags=raw,british``) or both; as stored, trimmed and lower-cased. A tag
    longer than the column holds is refused: the filter's SQL casts each tag to the column's
    length, and a tag cut so would match the products tagged with its first characters."""

    # Longer than a tag: a value may list several.
    child = serializers.CharField(max_length=400, allow_blank=True)

    def to_internal_value(self, data: Any) -> list[str]:
        try:
            values = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            # DRF keys a list's errors by item ({"0": [...]}); a filter's are its own list.
            errors = exc.detail.values() if isinstance(exc.detail, dict) else [exc.detail]
            raise serializers.ValidationError(
                list(dict.fromkeys(message for error in errors for message in error))
            ) from exc
        tags = (tag_stored(tag) for value in values for tag in value.split(","))
        tags_given = list(dict.fromkeys(tag for tag in tags if tag))
        if any(len(tag) > TAG_MAX_LENGTH for tag in tags_given):
            raise serializers.ValidationError(
                [f"Ensure each tag has no more than {TAG_MAX_LENGTH} characters."],
                code="max_length",
            )
        return tags_given


class ProductListApi(APIView):
    """``GET``: browse or search active products. ``POST`` (staff): create one."""

    permission_classes = [IsStaffWithModelPermissionOrReadOnly]
    permission_model = Product

    class FilterSerializer(QueryParamsSerializer):
        q = serializers.CharField(required=False, allow_blank=True, max_length=MAX_QUERY_LENGTH)
        category = serializers.SlugField(required=False)
        min_price = PlainDecimalField(
            max_digits=10, decimal_places=2, min_value=Decimal(0), required=False
        )
        max_price = PlainDecimalField(
            max_digits=10, decimal_places=2, min_value=Decimal(0), required=False
        )
        in_stock = serializers.BooleanField(required=False, allow_null=True, default=None)
        tags = TagFilterField(
            required=False,
            help_text="Products holding every tag given: the parameter repeated, or tags "
            f"separated by commas; each tag at most {TAG_MAX_LENGTH} characters.",
        )
        ordering = serializers.ChoiceField(
            choices=[sort.value for sort in selectors.ProductSort], required=False
        )

        def validate_category(self, slug: str) -> str:
            if not selectors.category_exists(slug=slug):
                raise serializers.ValidationError(
                    "No category with this slug.", code="does_not_exist"
                )
            return slug

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            low, high = attrs.get("min_price"), attrs.get("max_price")
            if low is not None and high is not None and low > high:
                raise serializers.ValidationError(
                    {"max_price": ["Must be greater than or equal to min_price."]}, code="min_value"
                )
            return attrs

    @extend_schema_serializer(component_name="ProductCreate")
    class CreateSerializer(ProductInputSerializer):
        sku = serializers.CharField(validators=[sku_validator])

        def validate_sku(self, sku: str) -> str:
            if selectors.product_exists(sku=sku):
                raise serializers.ValidationError(
                    "A product with this sku already exists.", code="unique"
                )
            return sku

    @extend_schema(
        operation_id="products_list",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses={
            200: page_of(ProductOutputSerializer, "Product"),
            **error_responses(400, 401, 404, 429),
        },
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        filters = selectors.ProductFilters(
            category=data.get("category"),
            min_price=data.get("min_price"),
            max_price=data.get("max_price"),
            in_stock=data.get("in_stock"),
            tags=tuple(data.get("tags", ())),
        )
        sort = selectors.ProductSort(data["ordering"]) if "ordering" in data else None
        query = data.get("q", "").strip()
        if query:
            products: Any = selectors.product_search_rows(query=query, filters=filters, sort=sort)
        else:
            products = selectors.product_list(filters=filters, sort=sort)
        paginator = StandardPagination()
        page = paginator.paginate_queryset(products, request, view=self)
        return paginator.get_paginated_response([product_output(product) for product in page or []])

    @extend_schema(
        operation_id="products_create",
        request=CreateSerializer,
        responses={201: ProductStaffOutputSerializer, **error_responses(400, 401, 403, 429)},
    )
    def post(self, request: Request) -> Response:
        payload = self.CreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        product = services.product_create(**payload.validated_data)
        return Response(
            ProductStaffOutputSerializer(product).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": reverse("product-detail", kwargs={"sku": product.sku})},
        )


class ProductDetailApi(APIView):
    """``GET``: one active product by sku (staff who may view or change products: any, with
    ``is_active``). ``PATCH`` (staff): change it."""

    permission_classes = [IsStaffWithModelPermissionOrReadOnly]
    permission_model = Product

    @extend_schema(
        operation_id="products_retrieve",
        responses={
            200: OpenApiResponse(
                ProductOutputSerializer,
                description="Staff who may view or change products also get inactive ones,"
                " and is_active.",
            ),
            **error_responses(401, 404, 429),
        },
    )
    def get(self, request: Request, sku: str) -> Response:
        staff = staff_may_view(request.user, Product)
        product = selectors.product_get(sku=sku, include_inactive=staff)
        if product is None:
            raise Http404
        output = ProductStaffOutputSerializer if staff else ProductOutputSerializer
        return _tagged(output(product).data)

    @extend_schema(
        operation_id="products_update",
        request=ProductInputSerializer(partial=True),
        parameters=[IF_MATCH],
        responses={
            200: ProductStaffOutputSerializer,
            **error_responses(400, 401, 403, 404, 412, 429),
        },
    )
    def patch(self, request: Request, sku: str) -> Response:
        rows = Product.objects.filter(sku=sku)
        with locked_if_match(request, rows, _staff_shown) as product:
            payload = ProductInputSerializer(data=request.data, partial=True)
            payload.is_valid(raise_exception=True)
            product = services.product_update(product=product, **payload.validated_data)
        return _tagged(_staff_shown(product))


def _staff_shown(product: Product) -> dict[str, Any]:
    return ProductStaffOutputSerializer(product).data


def _tagged(data: dict[str, Any]) -> Response:
    """A row as shown, with its ``ETag``: sent back in ``If-Match``, it makes a ``PATCH``
    conditional (``locked_if_match``)."""
    return Response(data, headers={"ETag": representation_etag(data)})


@extend_schema_serializer(component_name="Category")
class CategoryOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["slug", "name", "description"]
        # Outputs: read-only, which the schema calls required (each is always there).
        read_only_fields = fields


class CategoryInputSerializer(StrictSerializer):
    read_only_names = ("slug",)

    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")

    def validate_name(self, name: str) -> str:
        # Imports find a category by its name whatever its case and its runs of spaces, so
        # names differ by more; in any case as the unique constraint compares ("\u212aiwi" is
        # "Kiwi" to it).
        name = Category.name_as_written(name)
        same = selectors.category_named(name=name)
        if same is not None and (self.instance is None or same.pk != self.instance.pk):
            raise serializers.ValidationError(
                "A category with this name already exists.", code="unique"
            )
        return name


class CategoryListApi(APIView):
    """``GET``: every category, by name. ``POST`` (staff): create one."""

    permission_classes = [IsStaffWithModelPermissionOrReadOnly]
    permission_model = Category

    @extend_schema_serializer(component_name="CategoryCreate")
    class CreateSerializer(CategoryInputSerializer):
        slug = serializers.SlugField(
            max_length=100,
            required=False,
            help_text="Made from the name when left out; needed when the name has no letters"
            " or digits.",
        )

        def validate_slug(self, slug: str) -> str:
            if selectors.category_exists(slug=slug):
                raise serializers.ValidationError(
                    "A category with this slug already exists.", code="unique"
                )
            return slug

    @extend_schema(
        operation_id="categories_list",
        parameters=PAGE_PARAMETERS,
        responses={
            200: page_of(CategoryOutputSerializer, "Category"),
            **error_responses(400, 401, 404, 429),
        },
    )
    def get(self, request: Request) -> Response:
        categories = selectors.category_list()
        paginator = StandardPagination()
        page = paginator.paginate_queryset(categories, request, view=self)
        return paginator.get_paginated_response(CategoryOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="categories_create",
        request=CreateSerializer,
        responses={201: CategoryOutputSerializer, **error_responses(400, 401, 403, 429)},
    )
    def post(self, request: Request) -> Response:
        payload = self.CreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        category = services.category_create(**payload.validated_data)
        return Response(
            CategoryOutputSerializer(category).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": reverse("category-detail", kwargs={"slug": category.slug})},
        )


class CategoryDetailApi(APIView):
    """``GET``: one category by slug. ``PATCH`` (staff): change it; a new name reaches its
    products' embeddings."""

    permission_classes = [IsStaffWithModelPermissionOrReadOnly]
    permission_model = Category

    @extend_schema(
        operation_id="categories_retrieve",
        responses={200: CategoryOutputSerializer, **error_responses(401, 404, 429)},
    )
    def get(self, request: Request, slug: str) -> Response:
        category = selectors.category_get(slug=slug)
        if category is None:
            raise Http404
        return _tagged(CategoryOutputSerializer(category).data)

    @extend_schema(
        operation_id="categories_update",
        request=CategoryInputSerializer(partial=True),
        parameters=[IF_MATCH],
        responses={
            200: CategoryOutputSerializer,
            **error_responses(400, 401, 403, 404, 412, 429),
        },
    )
    def patch(self, request: Request, slug: str) -> Response:
        rows = Category.objects.filter(slug=slug)
        shown = CategoryOutputSerializer
        with locked_if_match(request, rows, lambda row: shown(row).data) as category:
            payload = CategoryInputSerializer(category, data=request.data, partial=True)
            payload.is_valid(raise_exception=True)
            category = services.category_update(category=category, **payload.validated_data)
        return _tagged(shown(category).data)


@extend_schema_serializer(component_name="KnowledgeArticle")
class KnowledgeArticleOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = KnowledgeArticle
        fields = ["slug", "title", "topic", "body", "is_published", "updated_at"]
        # Outputs: read-only, which the schema calls required (each is always there).
        read_only_fields = fields


class KnowledgeArticleInputSerializer(StrictSerializer):
    read_only_names = ("slug", "updated_at")

    title = serializers.CharField(max_length=200)
    topic = serializers.ChoiceField(choices=KnowledgeArticle.Topic.choices)
    body = serializers.CharField(max_length=ARTICLE_BODY_MAX_LENGTH)
    is_published = serializers.BooleanField(required=False, default=True)


class KnowledgeListApi(APIView):
    """``GET``: published articles; with ``q``, the best matches first. ``POST`` (staff): create
    one."""

    permission_classes = [IsStaffWithModelPermissionOrReadOnly]
    permission_model = KnowledgeArticle

    class FilterSerializer(QueryParamsSerializer):
        q = serializers.CharField(required=False, allow_blank=True, max_length=MAX_QUERY_LENGTH)
        topic = serializers.ChoiceField(choices=KnowledgeArticle.Topic.choices, required=False)

    @extend_schema_serializer(component_name="KnowledgeArticleCreate")
    class CreateSerializer(KnowledgeArticleInputSerializer):
        slug = serializers.SlugField(
            max_length=220,
            required=False,
            help_text="Made from the title when left out; needed when the title has no letters"
            " or digits.",
        )

        def validate_slug(self, slug: str) -> str:
            if selectors.knowledge_article_exists(slug=slug):
                raise serializers.ValidationError(
                    "An article with this slug already exists.", code="unique"
                )
            return slug

    @extend_schema(
        operation_id="knowledge_list",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses={
            200: page_of(KnowledgeArticleOutputSerializer, "KnowledgeArticle"),
            **error_responses(400, 401, 404, 429),
        },
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        topic, query = params.validated_data.get("topic"), params.validated_data.get("q", "")
        if query.strip():
            articles: Any = selectors.knowledge_search_rows(query=query, topic=topic)
        else:
            articles = selectors.knowledge_article_list(topic=topic)
        paginator = StandardPagination()
        page = paginator.paginate_queryset(articles, request, view=self)
        return paginator.get_paginated_response(
            KnowledgeArticleOutputSerializer(page, many=True).data
        )

    @extend_schema(
        operation_id="knowledge_create",
        request=CreateSerializer,
        responses={
            201: KnowledgeArticleOutputSerializer,
            **error_responses(400, 401, 403, 429),
        },
    )
    def post(self, request: Request) -> Response:
        payload = self.CreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        article = services.knowledge_article_create(**payload.validated_data)
        return Response(
            KnowledgeArticleOutputSerializer(article).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": reverse("knowledge-detail", kwargs={"slug": article.slug})},
        )


class KnowledgeDetailApi(APIView):
    """``GET``: one published article by slug (staff who may view or change articles: any).
    ``PATCH`` (staff): change it, published or not."""

    permission_classes = [IsStaffWithModelPermissionOrReadOnly]
    permission_model = KnowledgeArticle

    @extend_schema(
        operation_id="knowledge_retrieve",
        responses={
            200: OpenApiResponse(
                KnowledgeArticleOutputSerializer,
                description="Staff who may view or change articles also get unpublished ones.",
            ),
            **error_responses(401, 404, 429),
        },
    )
    def get(self, request: Request, slug: str) -> Response:
        staff = staff_may_view(request.user, KnowledgeArticle)
        article = selectors.knowledge_article_get(slug=slug, include_unpublished=staff)
        if article is None:
            raise Http404
        return _tagged(KnowledgeArticleOutputSerializer(article).data)

    @extend_schema(
        operation_id="knowledge_update",
        request=KnowledgeArticleInputSerializer(partial=True),
        parameters=[IF_MATCH],
        responses={
            200: KnowledgeArticleOutputSerializer,
            **error_responses(400, 401, 403, 404, 412, 429),
        },
    )
    def patch(self, request: Request, slug: str) -> Response:
        rows = KnowledgeArticle.objects.filter(slug=slug)
        shown = KnowledgeArticleOutputSerializer
        with locked_if_match(request, rows, lambda row: shown(row).data) as article:
            payload = KnowledgeArticleInputSerializer(data=request.data, partial=True)
            payload.is_valid(raise_exception=True)
            article = services.knowledge_article_update(article=article, **payload.validated_data)
        return _tagged(shown(article).data)
