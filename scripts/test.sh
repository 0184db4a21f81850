#!/usr/bin/env bash
# Everything CI checks: generated scripts up to date, types, lint, then every test against a real
# redis-server. Ends with a plain 'N passed, N failed' line.
set -uo pipefail
cd "$(dirname "$0")/.."

failed_steps=0
step() {
  local name=$1
  shift
  echo "== $name" >&2
  if ! "$@"; then
    echo "!! $name failed" >&2
    failed_steps=$((failed_steps + 1))
  fi
}

step "lua scripts embedded" node scripts/build-lua.mjs --check
step "lint" pnpm exec biome check .
step "types of tests" pnpm exec tsc -p tsconfig.tests.json
step "benchmark suites, smoke" node packages/bench/dist/main.js --quick
step "hedging benchmark, smoke" node packages/bench/dist/hedging.js --quick
step "memory benchmark, smoke" node packages/bench/dist/memory.js --quick

# The core, hedging and streaming files run a second time against a local Redis Cluster (3
# primaries, 3 replicas, started by the harness: packages/testing/src/global-setup.ts).
CLUSTER_FILES=(
  test/cross-process.test.ts
  test/hedging.test.ts
  test/streaming.test.ts
  packages/hedgeyard/src/producer/submit.test.ts
  packages/hedgeyard/src/producer/dispatch.test.ts
  packages/hedgeyard/src/consumer/worker.test.ts
)

results=$(mktemp)
cluster_results=$(mktemp)
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json="$results"
vitest_rc=$?
echo "== the same core, hedging and streaming tests on a Redis Cluster" >&2
HEDGEYARD_TEST_REDIS=cluster pnpm exec vitest run --reporter=default --reporter=json \
  --outputFile.json="$cluster_results" "${CLUSTER_FILES[@]}"
cluster_rc=$?
# One line for both passes; a pass whose report is missing counts as one failure.
node -e '
  const fs = require("fs")
  let passed = 0
  let failed = Number(process.argv[1])
  for (const file of process.argv.slice(2)) {
    let r = {}
    try { r = JSON.parse(fs.readFileSync(file, "utf8")) } catch {}
    passed += r.numPassedTests ?? 0
    failed += (r.numFailedTests ?? 0) + (r.numTotalTests === undefined ? 1 : 0)
  }
  console.log(`${passed} passed, ${failed} failed`)
' "$failed_steps" "$results" "$cluster_results"
rm -f "$results" "$cluster_results"
[ "$vitest_rc" = 0 ] && [ "$cluster_rc" = 0 ] && [ "$failed_steps" = 0 ]
