# One image for every service; the compose file picks the service with its command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first, from pyproject.toml alone (all pinned there): this layer is rebuilt when
# they change, not on every source edit. The `local` and `dev` extras stay out of the image.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY schemas ./schemas
COPY services ./services
RUN pip install --no-cache-dir --no-deps . \
    && groupadd --system --gid 10001 porting \
    && useradd --system --uid 10001 --gid 10001 --no-create-home porting

# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# Overridden per service in docker-compose.yml: python -m portability | workflow | notifier
CMD ["python", "-m", "portability"]
