# syntax=docker/dockerfile:1
# bluebroker: one image for the server (`serve`), the Kafka ingest workers (`ingest kafka`) and
# the catalog migrations (`catalog init|upgrade`). Multi-stage: compilers and pip's caches stay
# in the build stage; the runtime stage is python:slim with one virtualenv, run as a user
# without privileges. See docs/operator-guide.md (Deploying with Docker Compose).

FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/bluebroker
ENV PATH=/opt/bluebroker/bin:$PATH
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir ".[server,directory]"

FROM python:3.11-slim AS runtime
RUN groupadd --system --gid 10001 bluebroker \
    && useradd --system --uid 10001 --gid bluebroker --create-home \
        --home-dir /var/lib/bluebroker bluebroker
COPY --from=build /opt/bluebroker /opt/bluebroker
ENV PATH=/opt/bluebroker/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BLUEBROKER_CONFIG=/etc/bluebroker/bluebroker.yml
WORKDIR /var/lib/bluebroker
USER bluebroker
# 8000: the HTTP API (serve); 9100: an ingest worker's /metrics (ingest kafka --metrics-port)
EXPOSE 8000 9100
ENTRYPOINT ["bluebroker"]
CMD ["serve"]
