import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startExporter } from '@hedgeyard/testing/exporter'
import {
  eventually,
  redisUrl,
  root,
  spawnWorker,
  uniquePool,
  type WorkerProcess,
} from '@hedgeyard/testing/helpers'
import { parsePromText } from '@hedgeyard/testing/prom-text'
import { afterEach, describe, expect, it } from 'vitest'

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {})
})

/** The `hedgeyard_*` metric families a text names (a histogram's series by its family's name). */
function namesIn(text: string): Set<string> {
  const names = text.match(/hedgeyard_[a-z_]+[a-z]/g) ?? []
  return new Set(names.map((n) => n.replace(/_(bucket|sum|count)$/, '')))
}

describe('docs/observability.md and the Grafana dashboard', () => {
  it('name only metrics that a worker, the exporter or the gateway serves', async () => {
    const doc = readFileSync(join(root, 'docs/observability.md'), 'utf8')
    const grafana = readFileSync(join(root, 'docs/grafana/hedgeyard.json'), 'utf8')
    const gatewayMetrics = readFileSync(join(root, 'packages/gateway/src/metrics.ts'), 'utf8')
    const pool = uniquePool('docs-metrics')
    const worker: WorkerProcess = await spawnWorker({
      pool,
      handler: 'echo.js',
      extraArgs: ['--metrics-port', '0', '--metrics-host', '127.0.0.1'],
    })
    cleanups.push(() => worker.stop())
    const workerUrl = await eventually(() => /"url":"(http:[^"]+\/metrics)"/.exec(worker.output())?.[1])
    const exporter = await startExporter(['--redis', redisUrl(), '--pool', pool], cleanups)
    const served = new Set<string>()
    for (const url of [workerUrl as string, `${exporter.url}/metrics`]) {
      for (const name of parsePromText(await (await fetch(url)).text()).keys()) served.add(name)
    }
    // The gateway's own three are defined in one module; its library metrics are the worker's.
    for (const [, name] of gatewayMetrics.matchAll(/name: '(hedgeyard_[a-z_]+)'/g)) served.add(name as string)
    const documented = new Set([...namesIn(doc), ...namesIn(grafana)])
    expect(documented.size).toBeGreaterThan(30)
    expect([...documented].filter((n) => !served.has(n))).toEqual([])
    // And the other way: every hedgeyard metric served is in the doc's tables.
    expect([...served].filter((n) => n.startsWith('hedgeyard_') && !namesIn(doc).has(n))).toEqual([])
    // The dashboard is valid JSON with its pool variable.
    expect(JSON.parse(grafana).templating.list.map((v: { name: string }) => v.name)).toContain('pool')
  })
})
