# Portal MFA workers and mfactl, for compose.yaml.
#
# Two stages on Debian 12: the build stage installs the -dev packages and
# runs make for the programs only (no tests); the runtime stage has the
# shared libraries, the programs, the schema, the example configuration
# and the templates, and runs as an unprivileged user. No secret is baked
# in: the master key and passwords come from the environment at run time.

FROM debian:12-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        gcc g++ make pkg-config \
        librabbitmq-dev libpq-dev libcurl4-openssl-dev libsodium-dev \
        libjson-c-dev libyaml-dev libphonenumber-dev \
        libicu-dev libprotobuf-dev libabsl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY shared/ shared/
COPY workers/ workers/
COPY producer/ producer/
COPY ctl/ ctl/
# The programs, not `make all` (that also builds the test binaries).
RUN make -j"$(nproc)" build/bin/mfactl \
        $(for d in workers/*/; do n=${d#workers/}; echo build/bin/mfa-${n%/}; done)

FROM debian:12-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        librabbitmq4 libpq5 libcurl4 libsodium23 libjson-c5 libyaml-0-2 \
        libphonenumber8 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /opt/mfa --shell /usr/sbin/nologin mfa
COPY --from=build /src/build/bin/ /usr/local/bin/
COPY schema/ /opt/mfa/schema/
COPY config/ /opt/mfa/config/
WORKDIR /opt/mfa
USER mfa
ENV MFA_CONFIG=/opt/mfa/config/mfa.yaml
# compose.yaml names the program of each service.
CMD ["mfactl", "--help"]
