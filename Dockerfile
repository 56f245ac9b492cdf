# larder in a container: built on Debian 12 with the project's own scripts,
# run on debian:12-slim with only the runtime libraries, as a non-root user.
#   docker build -t larder .
#   docker run -p 6566:6566 -p 6567:6567 -p 9090:9090 larder   # SQLite in /var/lib/larder
# docker-compose.yml runs it with MariaDB and with PostgreSQL.

FROM debian:12-slim AS build
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
RUN bash scripts/deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DLARDER_TESTS=OFF \
 && cmake --build /build --target larder -j"$(nproc)" \
 && /build/larder --version

FROM debian:12-slim
# The shared libraries larder links (integration/test_container.py checks
# this list against the binary); their own dependencies come with them.
# tzdata: Feast's zoned timestamps are written out in their IANA zones.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libgrpc29 libprotobuf-c1 libyaml-0-2 libsqlite3-0 libpq5 libmariadb3 libmicrohttpd12 \
      libssl3 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 larder \
 && useradd --system --uid 10001 --gid larder --home-dir /var/lib/larder --create-home \
      --shell /usr/sbin/nologin larder
COPY --from=build /build/larder /usr/local/bin/larder
COPY docker/feature_store.sqlite.yaml /etc/larder/feature_store.yaml
USER 10001:10001
WORKDIR /var/lib/larder
VOLUME /var/lib/larder
ENV FEAST_FS_YAML_FILE_PATH=/etc/larder/feature_store.yaml
EXPOSE 6566 6567 9090
# Readiness of the online store API (a ping of the database at most once a
# second); `larder health` with no service name is the liveness check.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["larder", "health", "larder.v1.OnlineStore"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["larder"]
CMD ["serve"]
