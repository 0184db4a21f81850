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

results=$(mktemp)
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json="$results"
vitest_rc=$?
node -e '
  const fs = require("fs")
  let r = {}
  try { r = JSON.parse(fs.readFileSync(process.argv[1], "utf8")) } catch {}
  const passed = r.numPassedTests ?? 0
  const failed = (r.numFailedTests ?? 0) + Number(process.argv[2]) + (r.numTotalTests === undefined ? 1 : 0)
  console.log(`${passed} passed, ${failed} failed`)
' "$results" "$failed_steps"
rm -f "$results"
[ "$vitest_rc" = 0 ] && [ "$failed_steps" = 0 ]
