#!/usr/bin/env bash
# Prove template.yaml deployable without an AWS account:
#   1. cfn-lint template.yaml                         (CloudFormation schema + best practices)
#   2. sam validate --lint --region us-east-1         (the SAM transform + cfn-lint on its output)
#   3. sam build --exclude ModelFunction              (packages the layer and zip functions for the runtime),
#      only when the function runtime's Python (python3.13) exists; otherwise says it skipped.
#      ModelFunction is a container image: building it needs a running Docker engine and its base images, so
#      the container tests build it (tests/containers/test_model_function.py), not this check.
# The SAM CLI and cfn-lint live in their own venv: $SAM_VENV, default <repo>/.venv-sam (`make sam-venv`).
# Exits non-zero as soon as a check fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SAM_VENV="${SAM_VENV:-$ROOT/.venv-sam}"
case "$SAM_VENV" in /*) ;; *) SAM_VENV="$ROOT/$SAM_VENV" ;; esac
SAM="$SAM_VENV/bin/sam"
CFN_LINT="$SAM_VENV/bin/cfn-lint"
REGION="${AWS_REGION:-us-east-1}"
export SAM_CLI_TELEMETRY=0

for tool in "$SAM" "$CFN_LINT"; do
    if [[ ! -x "$tool" ]]; then
        echo "check_template: $tool not found; create the venv with 'make sam-venv' or set SAM_VENV" >&2
        exit 2
    fi
done

step() { printf '\n==> %s\n' "$*"; }

step "cfn-lint template.yaml  ($("$CFN_LINT" --version))"
"$CFN_LINT" template.yaml
echo "cfn-lint: no errors or warnings"

step "sam validate --lint --region $REGION  ($("$SAM" --version))"
"$SAM" validate --lint --region "$REGION" --template-file template.yaml

# The functions' runtime, e.g. python3.13; sam build needs that interpreter on PATH. pyenv machines
# expose every installed version at once through PYENV_VERSION.
RUNTIME="$(sed -n 's/^ *Runtime: *\(python3\.[0-9]*\) *$/\1/p' template.yaml | head -n 1)"
if [[ -z "$RUNTIME" ]]; then
    echo "check_template: no 'Runtime: python3.x' line found in template.yaml" >&2
    exit 1
fi
if command -v pyenv >/dev/null 2>&1 && [[ -z "${PYENV_VERSION:-}" ]]; then
    export PYENV_VERSION="3.11.7:3.12.1:3.13.0"
fi
if ! "$RUNTIME" --version >/dev/null 2>&1; then
    step "sam build: SKIPPED ($RUNTIME not found; install it, or on pyenv set PYENV_VERSION to include it)"
    exit 0
fi

step "sam build --template-file template.yaml --exclude ModelFunction  ($RUNTIME = $("$RUNTIME" --version 2>&1)${PYENV_VERSION:+, PYENV_VERSION=$PYENV_VERSION})"
"$SAM" build --template-file template.yaml --build-dir .aws-sam/build --exclude ModelFunction

# A build that "succeeds" without the core in the layer would still fail at the first request.
for required in \
    .aws-sam/build/CommonLayer/python/omnisearch_embed/__init__.py \
    .aws-sam/build/CommonLayer/python/aws_lambda_powertools/__init__.py \
    .aws-sam/build/EmbedFunction/app.py \
    .aws-sam/build/MetricsFunction/app.py \
    .aws-sam/build/AuthorizerFunction/app.py; do
    if [[ ! -f "$required" ]]; then
        echo "check_template: sam build did not produce $required" >&2
        exit 1
    fi
done
echo "sam build: layer and functions packaged in .aws-sam/build"
