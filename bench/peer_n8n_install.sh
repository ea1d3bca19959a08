#!/bin/sh
# Installs the peer benchmark's n8n (bench/peer_n8n.py) under .erpsync/peer-n8n, never into the repository.
# n8n 2.x needs Node >= 24; this machine has Node 20. n8n 1.123.81, the last 1.x, says Node >= 20.19, but one of
# its dependencies (@n8n/expression-runtime 0.14 → isolated-vm ^6.2) needs Node >= 22: its native build fails on
# Node 20 ("'SourceLocation' in namespace 'v8' does not name a type"). isolated-vm 5.0.4 (Node >= 18) stands in.
# (1.95.0, the last release whose engines stop at Node 22, cannot be installed any more: it pins
# @n8n/ai-workflow-builder 0.6.0 and @n8n/api-types 0.30.0, which are no longer on the registry, npm ETARGET.)
# Usage: sh bench/peer_n8n_install.sh [DIR]   (default .erpsync/peer-n8n; N8N_VERSION overrides the version)
set -eu
DIR=${1:-.erpsync/peer-n8n}
VERSION=${N8N_VERSION:-1.123.81}
mkdir -p "$DIR"
cd "$DIR"
if [ -x node_modules/.bin/n8n ] && [ "$(node_modules/.bin/n8n --version 2>/dev/null)" = "$VERSION" ]; then
    echo "n8n $VERSION already installed in $DIR"
    exit 0
fi
# n8n-nodes-base asks for xlsx as a tarball from cdn.sheetjs.com, which this machine cannot reach (npm error
# ENOTFOUND cdn.sheetjs.com): the registry's xlsx 0.18.5 stands in. Only the spreadsheet nodes use it; the bench's
# workflow (Webhook and HTTP Request nodes) does not.
cat > package.json <<'JSON'
{"name": "erpsync-bench-peer-n8n", "private": true,
 "overrides": {"xlsx": "0.18.5", "isolated-vm": "5.0.4"}}
JSON
npm install --no-audit --no-fund --loglevel=error "n8n@$VERSION"
node_modules/.bin/n8n --version
