import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  CLI,
  client,
  eventually,
  redisUrl,
  spawnWorker,
  uniquePool,
  type WorkerProcess,
} from '@hedgeyard/testing/helpers'
import { Dispatcher, getJob, isHedgeyardError, poolKeys, setPoolLimits } from 'hedgeyard'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), '../artifacts')
const KEY = 'ops-key-0123456789abcdef'
const c = client()
const workers: WorkerProcess[] = []
const servers: ChildProcess[] = []
let browser: Browser

beforeAll(async () => {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  })
})
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop('SIGKILL')))
  for (const s of servers.splice(0)) s.kill('SIGKILL')
})
afterAll(async () => {
  await browser?.close()
  c.disconnect()
})

/** Starts a CLI command that serves HTTP and waits for the URL it prints. */
async function serve(args: string[], urlPattern: RegExp, env: Record<string, string> = {}): Promise<string> {
  const child = spawn(process.execPath, [CLI, ...args, '--redis', redisUrl(), '--port', '0'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  servers.push(child)
  let output = ''
  child.stdout?.on('data', (d) => {
    output += d
  })
  child.stderr?.on('data', (d) => {
    output += d
  })
  return (await eventually(() => {
    if (child.exitCode !== null) throw new Error(`${args[0]} exited:\n${output}`)
    return urlPattern.exec(output)?.[1]
  }, 15_000)) as string
}

/** Waits for a selector and says how long it took, from `since`. */
async function shows(page: Page, selector: string, since: number, timeoutMs = 2_000): Promise<number> {
  await page.locator(selector).waitFor({ timeout: timeoutMs })
  return Date.now() - since
}

const row = (workerId: string, state?: string) =>
  `tr[data-worker="${workerId}"]${state === undefined ? '' : `[data-state="${state}"]`}`

describe('the dashboard in a browser', () => {
  it('shows workers join and leave, drains one after a confirmation, retries and purges dead letters', async () => {
    const pool = uniquePool('dash')
    await setPoolLimits({ redis: redisUrl(), pool }, { rate: { limit: 200, periodMs: 1_000, burst: 20 } })
    const url = await serve(['dashboard', '--pool', pool], /dashboard of pool '.+' at (http:\S+)/)
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    const drainCalls: string[] = []
    page.on('request', (r) => {
      if (r.url().endsWith('/api/drain')) drainCalls.push(r.postData() ?? '')
    })
    await page.goto(url)
    await page.locator('#conn[data-state="live"]').waitFor()
    // The connection is live when its event stream opens; the pool's name comes with the first snapshot.
    await page.locator('#pool', { hasText: pool }).waitFor()
    await expect(page.locator('#pool').textContent()).resolves.toBe(pool)

    // A worker that dead-letters any request over 64 bytes, and two such requests.
    const small = await spawnWorker({
      pool,
      handler: 'echo.js',
      idPrefix: 'dash-small',
      extraArgs: ['--max-payload-bytes', '64'],
    })
    workers.push(small)
    const joinMs = await shows(page, row('dash-small-1', 'active'), Date.now())
    const dispatcher = new Dispatcher({ redis: redisUrl(), pool })
    const payloads = [{ note: 'a'.repeat(80) }, { note: 'b'.repeat(80) }]
    for (const p of payloads) {
      await expect(dispatcher.submit(p)).rejects.toSatisfy(
        (e) => isHedgeyardError(e) && e.code === 'DEAD_LETTERED',
      )
    }
    await eventually(async () => (await page.locator('tr[data-dead]').count()) === 2, 5_000)
    // The count comes with the next snapshot, the rows from the list: either may be first.
    await eventually(async () => (await page.locator('#t-dead').textContent()) === '2', 5_000)

    const a = await spawnWorker({ pool, handler: 'echo.js', idPrefix: 'dash-a', count: 2, concurrency: 4 })
    workers.push(a)
    const joinMs2 = await shows(page, row('dash-a-2'), Date.now())
    const b = await spawnWorker({ pool, handler: 'echo.js', idPrefix: 'dash-b' })
    workers.push(b)
    await shows(page, row('dash-b-1', 'active'), Date.now())
    await b.stop()
    const leaveMs = await shows(page, row('dash-b-1', 'left'), Date.now())
    await expect(page.locator(`${row('dash-b-1')} .badge`).textContent()).resolves.toBe('left the pool')

    // Drain asks first, from the keyboard too: the focused button keeps its focus across updates,
    // Enter opens the confirmation, Escape and Cancel send nothing.
    const drainSmall = page.locator(`${row('dash-small-1')} button`)
    await drainSmall.focus()
    const updated = await page.locator('#updated').textContent()
    await eventually(async () => (await page.locator('#updated').textContent()) !== updated, 5_000)
    await page.keyboard.press('Enter')
    await page.locator('#confirm[open]').waitFor()
    await page.keyboard.press('Escape')
    await page.locator('#confirm:not([open])').waitFor({ state: 'attached' })
    await page.locator(`${row('dash-small-1')} button`).click()
    await page.locator('#confirm').getByRole('button', { name: 'Cancel' }).click()
    expect(drainCalls).toEqual([])
    await page.locator(`${row('dash-small-1')} button`).click()
    await expect(page.locator('#confirm-title').textContent()).resolves.toBe('Drain dash-small-1?')
    const [drainReply] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/drain')),
      page.locator('#confirm-ok').click(),
    ])
    expect([drainReply.status(), drainReply.request().postDataJSON()]).toEqual([
      200,
      { workerId: 'dash-small-1' },
    ])
    // Escape and Cancel sent nothing: this is the only call.
    expect(drainCalls).toHaveLength(1)
    await eventually(() => small.child.exitCode === 0, 15_000)
    expect(await c.zscore(poolKeys('hy', pool).load, 'dash-small-1')).toBeNull()
    await shows(page, row('dash-small-1', 'left'), Date.now())
    await eventually(
      async () => (await page.locator('#status').textContent())?.includes('dash-small-1 is draining'),
      5_000,
    )

    // Some traffic for the charts, the rates and the producers' latencies (reported when it closes).
    const until = Date.now() + 8_000
    const submitLoop = async () => {
      while (Date.now() < until) {
        const delayMs = Math.round(5 + Math.random() ** 3 * 200)
        await dispatcher
          .submit({ delayMs, ...(Math.random() < 0.03 ? { fail: 'flaky upstream' } : {}) })
          .catch(() => {})
      }
    }
    await Promise.all(Array.from({ length: 8 }, submitLoop))
    await dispatcher.close()
    await eventually(async () => (await page.locator('#t-p99').textContent()) !== '–', 10_000)
    await expect(page.locator('#quotas').textContent()).resolves.toContain('200 requests per s')
    mkdirSync(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true })

    // Retry runs the letter again, on a worker that takes it, and its result can be read.
    const first = page.locator('tr[data-dead]').first()
    const [retryReply] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/dead/retry')),
      first.getByRole('button', { name: 'Retry' }).click(),
    ])
    const { retried } = (await retryReply.json()) as { retried: { jobId: string; workerId: string }[] }
    expect(retried).toHaveLength(1)
    const job = await eventually(async () => {
      const state = await getJob({ redis: redisUrl(), pool }, retried[0]?.jobId as string)
      return state.status === 'completed' ? state : undefined
    }, 10_000)
    expect(job?.result).toMatchObject({ echo: payloads[0], workerId: expect.stringMatching(/^dash-a-/) })
    // The page writes its status once it has read the reply the test saw.
    await eventually(
      async () =>
        /^Retried \S+ as job \S+ on dash-a-\d\.$/.test((await page.locator('#status').textContent()) ?? ''),
      5_000,
    )

    // Purge asks first, then deletes the letter.
    await eventually(async () => (await page.locator('tr[data-dead]').count()) === 1, 5_000)
    await page.locator('tr[data-dead]').getByRole('button', { name: 'Purge' }).click()
    await page.locator('#confirm-ok').click()
    await page.locator('#no-dead:not([hidden])').waitFor({ timeout: 5_000 })
    expect(await c.xlen(poolKeys('hy', pool).dead)).toBe(0)
    console.log(
      `dashboard: a worker shows ${joinMs} ms and ${joinMs2} ms after registering; one shows as left ${leaveMs} ms after its process exited`,
    )
    await page.close()
  })
})

describe('the dashboard in the gateway', () => {
  it('asks for an API key, which ?key= turns into a cookie that the page and its events carry', async () => {
    const pool = uniquePool('dash-gw')
    workers.push(await spawnWorker({ pool, handler: 'echo.js', idPrefix: 'gw' }))
    const base = await serve(['gateway', '--pool', pool], /"url":"(http:[^"]+)"/, {
      HEDGEYARD_API_KEYS: `ops:${KEY}`,
      HEDGEYARD_LOG_LEVEL: 'info',
    })
    const none = await fetch(`${base}/dashboard/`)
    expect(none.status).toBe(401)
    expect(JSON.stringify(await none.json())).toContain('open /dashboard/?key=<API key> once')
    expect((await fetch(`${base}/dashboard/?key=not-the-key-0123456789`)).status).toBe(401)
    const login = await fetch(`${base}/dashboard/?key=${KEY}`, { redirect: 'manual' })
    expect([login.status, login.headers.get('location')]).toEqual([303, '/dashboard/'])
    const cookie = login.headers.get('set-cookie') ?? ''
    expect(cookie).toMatch(/^hy_dashboard_key=\S+; Path=\/dashboard; HttpOnly; SameSite=Strict$/)
    const pair = cookie.split(';')[0] as string
    expect((await fetch(`${base}/dashboard/api/dead`, { headers: { cookie: pair } })).status).toBe(200)
    expect((await fetch(`${base}/dashboard/api/dead`, { headers: { 'x-goog-api-key': KEY } })).status).toBe(
      200,
    )
    // The cookie opens the dashboard only.
    expect((await fetch(`${base}/workers`, { headers: { cookie: pair } })).status).toBe(401)

    const context = await browser.newContext()
    const page = await context.newPage()
    await page.goto(`${base}/dashboard?key=${KEY}`)
    expect(page.url()).toBe(`${base}/dashboard/`)
    await page.locator(row('gw-1', 'active')).waitFor({ timeout: 5_000 })
    await context.close()
  })

  it('is open on a loopback gateway without keys, and absent with --no-dashboard', async () => {
    const pool = uniquePool('dash-open')
    const open = await serve(['gateway', '--pool', pool], /"url":"(http:[^"]+)"/, {
      HEDGEYARD_LOG_LEVEL: 'info',
    })
    const page = await fetch(`${open}/dashboard/`)
    expect([page.status, page.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8'])
    const off = await serve(['gateway', '--pool', pool, '--no-dashboard'], /"url":"(http:[^"]+)"/, {
      HEDGEYARD_LOG_LEVEL: 'info',
    })
    expect((await fetch(`${off}/dashboard/`)).status).toBe(404)
  })
})
