# One image for every service; the compose file picks the service with its command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY services ./services
RUN pip install . && useradd --system --uid 10001 porting
USER porting
# Overridden per service in docker-compose.yml: python -m portability | workflow | notifier
CMD ["python", "-m", "portability"]
