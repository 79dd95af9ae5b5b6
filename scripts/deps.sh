#!/bin/sh
# Installs the Debian 12 packages Portal MFA needs to build, test and run
# locally. Quiet and quick when everything is already there; called by
# `make test` and `make run`.
set -eu

PKGS="gcc g++ make pkg-config clang libclang-rt-14-dev
librabbitmq-dev libpq-dev libcurl4-openssl-dev libsodium-dev libjson-c-dev
libyaml-dev libphonenumber-dev libcmocka-dev
libicu-dev libprotobuf-dev libabsl-dev
rabbitmq-server postgresql-15 postgresql-client-15
python3-aiosmtpd python3-pika python3-psycopg2 python3-pytest python3-nacl
valgrind openssl docker-compose"
# node and npm (test-only: Prism) may come from elsewhere than Debian, as on
# images that ship a newer Node.js; Debian's packages then conflict.
command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
# Installing rabbitmq-server must not start a system broker: the project
# runs its own under a private directory.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "deps: done"
