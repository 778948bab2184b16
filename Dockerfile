# Small runtime image: dependencies built in one stage, copied into a slim non-root one.
# No compiler is needed: every dependency (asyncpg, greenlet, pillow, …) ships manylinux wheels.
FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Dependencies first, from pyproject.toml alone: a code change then reuses this layer.
# The image is complete: the default set plus the postgres (docker-compose.yml) and charts extras.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['postgres'] + p['optional-dependencies']['charts']))" > requirements.txt \
    && pip install --prefix=/install -r requirements.txt
COPY README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install --prefix=/install --no-deps .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 outagebot \
    && mkdir -p -m 700 /app/data && chown outagebot:outagebot /app/data
COPY --from=build /install /usr/local
WORKDIR /app
USER outagebot
ENV DATABASE_URL=sqlite+aiosqlite:////app/data/outagebot.db \
    WEB_HOST=0.0.0.0 \
    WEB_PORT=8080 \
    CONSOLE=off \
    PYTHONUNBUFFERED=1
VOLUME ["/app/data"]
EXPOSE 8080
# The bot stops cleanly on SIGTERM (docker stop): polls in flight finish, the leader lock is freed.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"WEB_PORT\", \"8080\")}/healthz', timeout=2)"
CMD ["outagebot", "run"]
