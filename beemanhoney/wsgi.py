import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "beemanhoney.settings")

application = get_wsgi_application()


def _load_embedding_model() -> None:
    """Load the query embedding model (and its ONNX graph) as the worker boots.

    Otherwise the first search each gunicorn worker serves waits ~3-4 s for it.
    """
    from catalog.embeddings import get_embedding_backend

    get_embedding_backend()


_load_embedding_model()
