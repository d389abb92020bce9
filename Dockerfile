# syntax=docker/dockerfile:1
# Build: docker build -t sharpen .
# Run:   docker run -p 8000:8000 -e SHARPEN_REDIS_URL=redis://redis:6379/0 \
#          -e SHARPEN_ADMIN_KEYS=ops=... -e SHARPEN_CLIENT_KEYS=svc=... sharpen
FROM python:3.11-slim AS build
WORKDIR /src
COPY sdk/ sdk/
COPY pyproject.toml README.md ./
COPY service/ service/
# The service needs the SDK (`sharpen`): both are built together, so the local one is used.
RUN pip wheel --no-cache-dir --wheel-dir /wheels ./sdk .

FROM python:3.11-slim AS runtime
RUN useradd --system --uid 10001 --home /app sharpen
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER sharpen
ENV SHARPEN_HOST=0.0.0.0 SHARPEN_PORT=8000 PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
# The API with the aggregator/monitor worker in-process; add --no-worker and run
# `sharpen worker` in another container to scale them apart.
ENTRYPOINT ["sharpen"]
CMD ["serve"]
