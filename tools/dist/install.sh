#!/bin/sh
# Install the warehouse edge gateway @VERSION@ (@TAG@) from this archive, without internet.
#
#   sudo ./install.sh                  the program in /opt/edge-gateway/.venv, then
#                                      `gateway install`: user, /etc/edge-gateway, the service
#   sudo ./install.sh --prefix DIR     the program in DIR/.venv instead
#   ./install.sh --program-only        only the program (no root needed for a DIR you own)
#   sudo ./install.sh --no-enable      other options go to `gateway install` (see INSTALL.txt)
#
# PYTHON=/usr/bin/python3.11 ./install.sh chooses the interpreter (default: python3). It must
# be Python @TAG@'s version: the wheels in wheels/ are built for it.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
prefix=/opt/edge-gateway
program_only=0
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --program-only) program_only=1; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) break ;;
    esac
done
PYTHON=${PYTHON:-python3}

# Only the wheels beside this script, whatever pip configuration the box has.
unset PIP_FIND_LINKS PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_CONSTRAINT PIP_REQUIRE_VIRTUALENV
export PIP_NO_INDEX=1 PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1

want=$(echo "@TAG@" | cut -d- -f1)
have=$("$PYTHON" -c 'import sys; print(f"py{sys.version_info[0]}{sys.version_info[1]}")' 2>/dev/null) || {
    echo "install.sh: $PYTHON not found. Debian 12: apt-get install python3 (3.11), or set PYTHON=/path/to/python3.11" >&2
    exit 1
}
if [ "$have" != "$want" ]; then
    echo "install.sh: this archive is built for $want (@TAG@) but $PYTHON is $have." >&2
    echo "  Set PYTHON=/path/to/the/right/python, or build an archive on a box with $have (make dist)." >&2
    exit 1
fi
arch=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_platform().replace("-", "_").replace(".", "_"))')
case "@TAG@" in
    *"-$arch") ;;
    *) echo "install.sh: this archive is built for @TAG@, this box is $arch: build one here (make dist)." >&2
       exit 1 ;;
esac

venv="$prefix/.venv"
before=""
if [ -x "$venv/bin/gateway" ]; then
    before=$("$venv/bin/gateway" version 2>/dev/null || true)
else
    echo "install.sh: creating $venv"
    mkdir -p "$prefix"
    # --without-pip: Debian's python3 has no ensurepip unless python3-venv is installed;
    # pip comes from the archive instead.
    "$PYTHON" -m venv --without-pip "$venv"
    pip_wheel=$(ls "$here"/wheels/pip-*.whl | head -n 1)
    "$venv/bin/python" "$pip_wheel/pip" install --quiet --no-index --find-links "$here/wheels" pip
fi
echo "install.sh: installing edge-gateway @VERSION@ from $here/wheels (no network)"
"$venv/bin/python" -m pip install --quiet --upgrade --no-index --find-links "$here/wheels" \
    "warehouse-edge-gateway==@VERSION@"
after=$("$venv/bin/gateway" version)
echo "install.sh: $after in $venv"

if [ "$program_only" = 1 ]; then
    echo "install.sh: next (as root): $venv/bin/gateway install --prefix $prefix"
    exit 0
fi
"$venv/bin/gateway" install --prefix "$prefix" "$@"
if [ -n "$before" ] && [ "$before" != "$after" ] && [ -d /run/systemd/system ]; then
    echo "install.sh: upgraded ($before -> $after): restarting edge-gateway if it runs"
    systemctl try-restart edge-gateway.service
fi
echo "install.sh: done. Next: edit /etc/edge-gateway/gateway.toml and secrets.env, then run $venv/bin/gateway doctor"
