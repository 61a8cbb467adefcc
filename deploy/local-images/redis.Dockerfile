# Debian's Redis: the stand-in for the public `redis:7` image where no image registry can be
# reached. Same contract as far as the compose file uses it: `redis-server` on 6379, `redis-cli`.
ARG DEBIAN_IMAGE=localhost/qrp-debian:bookworm
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/*
USER redis
WORKDIR /var/lib/redis
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]
