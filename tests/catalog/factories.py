from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.utils.text import slugify

from catalog.models import Category, KnowledgeArticle, Product


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"customer{n:04d}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    is_staff = False


class CategoryFactory(factory.django.DjangoModelFactory[Category]):
    class Meta:
        model = Category

    name = factory.Sequence(lambda n: f"Test Category {n:04d}")
    slug = factory.LazyAttribute(lambda category: slugify(category.name))
    description = "Honeys gathered from our own apiaries."


class ProductFactory(factory.django.DjangoModelFactory[Product]):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"T-{n:04d}")
    name = factory.Sequence(lambda n: f"Test Meadow Honey {n:04d} 340g")
    slug = factory.LazyAttribute(lambda product: f"{slugify(product.name)}-{product.sku.lower()}")
    category = factory.SubFactory(CategoryFactory)
    description = "A golden, runny honey from summer meadows with a soft floral sweetness."
    price = Decimal("9.50")
    currency = "GBP"
    weight_grams = 340
    stock = 25
    is_active = True
    tags = factory.LazyFunction(lambda: ["raw", "british"])
    origin = "Yorkshire, England"
    floral_source = "Wildflower"


class KnowledgeArticleFactory(factory.django.DjangoModelFactory[KnowledgeArticle]):
    class Meta:
        model = KnowledgeArticle

    title = factory.Sequence(lambda n: f"Test article {n:04d}")
    slug = factory.LazyAttribute(lambda article: slugify(article.title))
    topic = KnowledgeArticle.Topic.STORAGE
    body = "Keep honey at room temperature with the lid on, away from direct sunlight."
    is_published = True
