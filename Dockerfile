# Small runtime image: dependencies built in one stage, copied into a slim non-root one.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 outagebot \
    && mkdir -p /app/data && chown outagebot:outagebot /app/data
COPY --from=build /install /usr/local
WORKDIR /app
USER outagebot
ENV DATABASE_URL=sqlite+aiosqlite:////app/data/outagebot.db \
    WEB_HOST=0.0.0.0 \
    CONSOLE=off \
    PYTHONUNBUFFERED=1
VOLUME ["/app/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"
CMD ["outagebot", "run"]
