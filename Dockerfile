# One image for web (daphne), worker and beat (celery), matrix-sync and one-off commands.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# procps: pgrep for the beat healthcheck. psycopg[binary] brings its own libpq.
RUN apt-get update \
    && apt-get install -y --no-install-recommends procps \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --uid 10001 --shell /usr/sbin/nologin switchboard

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY --chown=switchboard:switchboard . .
# Static files are collected into the image (whitenoise can serve them; compose's migrate job
# copies them to the volume nginx serves). The keys below only exist for this build step.
RUN DJANGO_DEBUG=0 DJANGO_SECRET_KEY=collectstatic-only-build-step-key-not-used-at-runtime \
        FIELD_ENCRYPTION_KEYS=collectstatic-only-build-step-key-not-used-at-runtime \
        python manage.py collectstatic --noinput -v 0 \
    && mkdir -p /data/media /app/var \
    && chown -R switchboard:switchboard /data /app/staticfiles /app/var

USER switchboard
EXPOSE 8000
# Plain HTTP as compose's web services run it (uvicorn; docs/ARCHITECTURE.md has the figures).
# The websocket service overrides this with daphne; the drainer and workers with their own.
CMD ["uvicorn", "--host", "0.0.0.0", "--port", "8000", "--http", "httptools", "--loop", "uvloop", \
     "--no-proxy-headers", "--no-access-log", "--lifespan", "off", "crm.asgi:application"]
