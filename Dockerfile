# syntax=docker/dockerfile:1.7
#
# One image for every task-queue worker, the RAG API and the `twin` CLI.
#
#   docker build -t llm-twin .
#   docker run --rm -e TWIN_WORKER_QUEUES=etl,features llm-twin                 # workers (default command)
#   docker run --rm -p 8000:8000 llm-twin dist/src/api/server.js               # RAG API
#   docker run --rm llm-twin dist/src/cli/main.js doctor                       # CLI
#
# Build args:
#   EMBEDDING_MODEL=baked (default) exports all-MiniLM-L6-v2 to ONNX with scripts/install-embedding-model.sh
#                  and ships it at $EMBEDDING_MODEL_DIR; =none skips it (use EMBEDDING_BACKEND=openai then).
#
# Base: Debian bookworm (glibc). The Temporal core bridge and onnxruntime-node ship glibc binaries only, so
# Alpine/musl images cannot load them.

ARG NODE_IMAGE=node:20-bookworm-slim
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG EMBEDDING_MODEL=baked

# ---- build: all dependencies, TypeScript → dist/, prebuilt workflow bundle --------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL_CUDA=skip
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build \
    && test -f dist/workflow-bundle.js && test -f dist/workers/main.js && test -f dist/src/api/server.js \
    && mkdir -p jobs configs

# ---- deps: production dependencies only --------------------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL_CUDA=skip
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- model: the local embedding model, exported once at build time -----------------------------------------
FROM ${PYTHON_IMAGE} AS model-baked
COPY scripts/install-embedding-model.sh /tmp/install-embedding-model.sh
RUN TWIN_HOME=/tmp/twin EMBEDDING_MODEL_DIR=/opt/models/all-MiniLM-L6-v2 bash /tmp/install-embedding-model.sh \
    && rm -rf /tmp/twin

FROM ${NODE_IMAGE} AS model-none
RUN mkdir -p /opt/models/all-MiniLM-L6-v2

# hadolint ignore=DL3006
FROM model-${EMBEDDING_MODEL} AS model

# ---- runtime ------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# tini is PID 1: it forwards SIGTERM/SIGINT to node (the workers' graceful shutdown) and reaps zombies.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
    TWIN_HOME=/home/node/.cache/llm-twin \
    TWIN_WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js \
    TWIN_WORKER_QUEUES=all \
    EMBEDDING_MODEL_DIR=/opt/models/all-MiniLM-L6-v2 \
    API_PORT=8000
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --from=model --chown=root:root /opt/models /opt/models
COPY --chown=root:root package.json ./
# Python job code (packaged for SageMaker by the ml worker) and run configurations.
COPY --from=build --chown=root:root /app/jobs ./jobs
COPY --from=build --chown=root:root /app/configs ./configs
RUN mkdir -p /home/node/.cache/llm-twin/data && chown -R node:node /home/node
# The code is owned by root and read-only to the process; only $HOME is writable.
# 1000:1000 is the image's `node` user (numeric, so runAsNonRoot checks can verify it).
USER 1000:1000
EXPOSE 8000
ENTRYPOINT ["/usr/bin/tini", "--", "node"]
CMD ["dist/workers/main.js"]
