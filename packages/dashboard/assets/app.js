// The Hedgeyard dashboard: draws each `snapshot` event of `events` and calls the `api/` routes.
// Every URL is relative, so the page works at / and under a gateway's /dashboard/.
import { drawChart, record } from './chart.js'
import { $, ask, call, h, maxOf, ms, num, rate, say } from './dom.js'
import { drawWorkers } from './workers.js'

let deadCount = -1

function drawTiles(snap, p50, p99) {
  const alive = snap.workers.filter((w) => w.alive).length
  $('t-workers').textContent = `${alive} of ${snap.workers.length}`
  $('t-rate').textContent = rate(snap.jobsPerS)
  $('t-errors').textContent = snap.errorRate === null ? '–' : `${(snap.errorRate * 100).toFixed(1)}%`
  const running = snap.workers.reduce((n, w) => n + w.inflight, 0)
  const capacity = snap.workers.filter((w) => w.alive).reduce((n, w) => n + w.capacity, 0)
  $('t-load').textContent = `${running} / ${capacity}`
  $('t-dead').textContent = num(snap.deadLetters)
  $('t-dead').closest('.tile').dataset.alert = snap.deadLetters > 0 ? 'yes' : 'no'
  $('t-p50').textContent = ms(p50)
  $('t-p99').textContent = ms(p99)
}

function drawProducers(snap) {
  const sum = (k) => snap.producers.reduce((n, p) => n + (p[k] ?? 0), 0)
  $('h-sent').textContent = num(sum('hedgesSent'))
  $('h-won').textContent = num(sum('hedgesWon'))
  $('h-denied').textContent = num(sum('hedgesDenied'))
  $('h-retries').textContent = num(sum('retriesSent'))
  const cells = (p) => [
    h('th', { scope: 'row', class: 'mono' }, p.producerId),
    ...[p.submitted, p.succeeded, p.failed].map((n) => h('td', { class: 'num' }, num(n))),
    h('td', { class: 'num' }, `${num(p.hedgesSent)} / ${num(p.hedgesWon)} / ${num(p.hedgesDenied)}`),
    h('td', { class: 'num' }, ms(p.latencyP50Ms)),
    h('td', { class: 'num' }, ms(p.latencyP99Ms)),
    h('td', { class: 'num' }, `${Math.max(0, Math.round((snap.at - p.reportedAt) / 1000))} s ago`),
  ]
  $('producers').replaceChildren(...snap.producers.map((p) => h('tr', {}, ...cells(p))))
  $('no-producers').hidden = snap.producers.length > 0
  $('producers-table').hidden = snap.producers.length === 0
}

function period(n) {
  const units = { 1000: 's', 60000: 'min', 3600000: 'h', 86400000: 'day' }
  return units[n] ?? `${num(n)} ms`
}

function drawQuotas(limits) {
  const items = ['rate', 'cost']
    .filter((name) => limits[name])
    .map((name) => {
      const l = limits[name]
      const what = name === 'rate' ? 'requests' : 'cost units'
      return h(
        'li',
        {},
        h('strong', {}, name),
        ` ${num(l.limit)} ${what} per ${period(l.periodMs)}, burst ${num(l.burst)}`,
      )
    })
  $('quotas').replaceChildren(...items)
  $('quotas-panel').hidden = items.length === 0
}

function drawDead(letters) {
  const act = (label, cls, handler) =>
    h('button', { type: 'button', class: `button ${cls}`, onclick: handler }, label)
  const tr = (l) =>
    h(
      'tr',
      { 'data-dead': l.deadId },
      h('th', { scope: 'row', class: 'mono' }, l.deadId),
      h('td', { class: 'mono' }, l.jobId),
      h('td', {}, l.reason),
      h('td', { class: 'mono' }, l.workerId),
      h(
        'td',
        { class: 'payload' },
        h('code', {}, l.payloadPreview),
        h('span', { class: 'muted small' }, ` ${num(l.payloadBytes)} bytes`),
      ),
      h(
        'td',
        { class: 'actions' },
        act('Retry', '', () => retry(l.deadId)),
        act('Purge', 'danger', () => purge(l.deadId)),
      ),
    )
  $('dead').replaceChildren(...letters.map(tr))
  $('no-dead').hidden = letters.length > 0
  $('dead-table').hidden = letters.length === 0
  $('dead-note').textContent = letters.length >= 100 ? 'the oldest 100' : ''
}

async function refreshDead() {
  try {
    drawDead((await call('GET', 'api/dead?count=100')).deadLetters)
  } catch (err) {
    say(`Could not list the dead letters: ${err.message}`, 'error')
  }
}

async function retry(deadId) {
  try {
    const { retried } = await call('POST', 'api/dead/retry', { deadIds: [deadId] })
    const r = retried[0]
    if (r) say(`Retried ${deadId} as job ${r.jobId} on ${r.workerId}.`)
    else say(`${deadId} stays: no worker had room for it, or it was already gone.`, 'error')
  } catch (err) {
    say(`Could not retry ${deadId}: ${err.message}`, 'error')
  }
  await refreshDead()
}

async function purge(deadId) {
  if (!(await ask(`Purge ${deadId}?`, 'The dead letter and its request are deleted for good.', 'Purge')))
    return
  try {
    const { purged } = await call('POST', 'api/dead/purge', { deadIds: [deadId] })
    say(purged > 0 ? `Purged ${deadId}.` : `${deadId} was already gone.`)
  } catch (err) {
    say(`Could not purge ${deadId}: ${err.message}`, 'error')
  }
  await refreshDead()
}

function onSnapshot(snap) {
  $('pool').textContent = snap.pool
  document.title = `Hedgeyard · ${snap.pool}`
  $('failure').hidden = true
  $('updated').textContent = `updated ${new Date(snap.at).toLocaleTimeString()}`
  // The slowest producer's latencies: the ones a user of the pool waits for.
  const p50 = maxOf(snap.producers.map((p) => p.latencyP50Ms))
  const p99 = maxOf(snap.producers.map((p) => p.latencyP99Ms))
  record({ at: snap.at, jobsPerS: snap.jobsPerS, p50, p99 })
  drawTiles(snap, p50, p99)
  drawWorkers(snap)
  drawProducers(snap)
  drawQuotas(snap.limits)
  drawChart($('chart-rate'), [{ key: 'jobsPerS' }], rate)
  drawChart($('chart-latency'), [{ key: 'p50' }, { key: 'p99' }], ms)
  if (snap.deadLetters !== deadCount) refreshDead()
  deadCount = snap.deadLetters
}

function connect() {
  const conn = $('conn')
  const events = new EventSource('events')
  events.addEventListener('open', () => {
    conn.textContent = 'live'
    conn.dataset.state = 'live'
  })
  events.addEventListener('error', () => {
    conn.textContent = 'reconnecting…'
    conn.dataset.state = 'down'
  })
  events.addEventListener('snapshot', (e) => onSnapshot(JSON.parse(e.data)))
  events.addEventListener('failure', (e) => {
    const { code, message } = JSON.parse(e.data)
    $('failure').textContent = `Cannot read the pool (${code}): ${message}`
    $('failure').hidden = false
  })
}

connect()
