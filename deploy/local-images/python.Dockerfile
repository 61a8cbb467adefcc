# Python 3.11 from Debian's packages: the stand-in for a public `python:3.11-slim` image where no
# image registry can be reached. Built FROM the Debian base that `scripts/compose_test.py`
# makes with debootstrap; `deploy/Dockerfile` builds the same way on either. The base carries
# the host's own CA certificates (/usr/local/share/ca-certificates, e.g. those of an inspecting
# proxy on the way to PyPI), and pip and uv are told to use the system's trust store.
ARG DEBIAN_IMAGE=localhost/qrp-debian:bookworm
FROM ${DEBIAN_IMAGE}
ENV LANG=C.UTF-8 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3.11 python3.11-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/python3.11 /usr/local/bin/python3 \
    && ln -s /usr/bin/python3.11 /usr/local/bin/python
CMD ["python3.11"]
