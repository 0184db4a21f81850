// The images' healthcheck: `node healthcheck.mjs gateway` asks the gateway's /healthz;
// `node healthcheck.mjs worker` looks in Redis for a live worker of this container's host.
import { hostname } from 'node:os'

const role = process.argv[2]
const fail = (why) => {
  process.stderr.write(`unhealthy: ${why}\n`)
  process.exit(1)
}

if (role === 'gateway') {
  const port = process.env.HEDGEYARD_GATEWAY_PORT ?? '8080'
  const res = await fetch(`http://127.0.0.1:${port}/healthz`).catch((err) => fail(err.message))
  if (!res.ok) fail(`/healthz answered ${res.status}`)
} else if (role === 'worker') {
  const { inspectPool } = await import('hedgeyard')
  const workers = await inspectPool({
    redis: process.env.HEDGEYARD_REDIS_URL ?? 'redis://127.0.0.1:6379',
    pool: process.env.HEDGEYARD_POOL ?? 'default',
  }).catch((err) => fail(err.message))
  if (!workers.some((w) => w.host === hostname() && w.alive)) fail(`no live worker of host ${hostname()}`)
} else {
  fail(`usage: healthcheck.mjs gateway|worker (got ${role})`)
}
process.exit(0)
