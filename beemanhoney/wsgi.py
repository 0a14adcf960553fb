import gc
import logging
import os
import sys

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "beemanhoney.settings")

application = get_wsgi_application()


def _load_search_models() -> None:
    """Load the query embedding model (and its ONNX graph) and the English words spelling
    leaves alone as the worker boots.

    Otherwise the first search each gunicorn worker serves waits ~3-4 s for them. A failure is
    logged, not raised: the worker still serves everything else, and search retries the load.
    """
    from catalog.embeddings import get_embedding_backend
    from catalog.spelling import english_words

    try:
        get_embedding_backend()
        english_words()
    except Exception:
        logging.getLogger(__name__).exception("wsgi.search_models_not_loaded")


_load_search_models()
# The ~500k objects loaded so far (Django, torch, the model) live as long as the worker: leave
# them out of the collector's full passes, which otherwise stall a request for ~0.2 s.
gc.freeze()
# A search reads the database on another thread while this one embeds its query: at the default
# 5 ms switch interval, each time one of them wants the GIL back it can wait that long.
sys.setswitchinterval(0.0005)
