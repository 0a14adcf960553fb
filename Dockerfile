# One image for the api, worker, beat and migrate services of docker-compose.yml.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# Without DATABASE_URL or REDIS_URL the app refuses to start, rather than run the development
# checkout's embedded PostgreSQL and Valkey inside the container.
ENV EMBEDDED_SERVICES=0
WORKDIR /app
RUN useradd --create-home --uid 1000 app
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \
    -r requirements.txt -c constraints.txt
# .dockerignore keeps .env, var/ and .venv out. The code stays root's, read-only to the app.
COPY . .
# collectstatic signs nothing; a key given here keeps a checkout's key file (var/) out of the image.
RUN DEBUG=1 SECRET_KEY=collectstatic-only-not-a-secret DATABASE_URL=postgresql://build@localhost/build \
    REDIS_URL=redis://localhost:6379/0 python manage.py collectstatic --noinput
# The one folder the app writes: the local model's ONNX query graph, exported on first use.
RUN mkdir -p var/models && chown app var var/models
USER app
EXPOSE 8000
