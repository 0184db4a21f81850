// The workers panel: one row per worker, kept in place and updated from each snapshot.
import { $, ask, call, h, num, say, secs } from './dom.js'

const GONE_MS = 60_000 // how long a worker that left stays listed
const rows = new Map() // workerId -> { tr, refs, goneAt, last }

function badgesOf(w, isGone) {
  if (isGone) return [['left', 'left the pool']]
  const out = []
  if (!w.alive) out.push(['dead', 'dead: lease ended'])
  if (w.state === 'draining') out.push(['draining', 'draining'])
  if (w.state === 'cooling') out.push(['cooling', `cooling ${secs(w.coolingMs)}`])
  if (w.breaker === 'open') out.push(['breaker', `breaker open ${secs(w.breakerMs)}`])
  if (w.breaker === 'half-open') out.push(['breaker', 'breaker half-open'])
  if (out.length === 0) out.push(w.state === 'active' ? ['active', 'active'] : ['other', w.state])
  return out
}

async function drain(workerId) {
  const ok = await ask(
    `Drain ${workerId}?`,
    'It stops taking jobs at once, hands back the ones it has not started, finishes the running ones and leaves the pool.',
    'Drain',
  )
  if (!ok) return
  try {
    await call('POST', 'api/drain', { workerId })
    say(`${workerId} is draining: it leaves once its running jobs finish.`)
  } catch (err) {
    say(`Could not drain ${workerId}: ${err.message}`, 'error')
  }
}

function newRow(id) {
  const refs = {
    host: h('span', { class: 'muted small' }),
    badges: h('td', { class: 'badges' }),
    inflight: h('span', { class: 'inflight' }),
    queued: h('span', { class: 'queued' }),
    loadText: h('span', { class: 'small' }),
    processed: h('td', { class: 'num' }),
    errors: h('td', { class: 'num' }),
    drain: h(
      'button',
      { type: 'button', class: 'button', 'aria-label': `Drain ${id}`, onclick: () => drain(id) },
      'Drain',
    ),
  }
  const bar = h('div', { class: 'bar', role: 'presentation' }, refs.inflight, refs.queued)
  const tr = h(
    'tr',
    { 'data-worker': id },
    h('th', { scope: 'row' }, h('span', { class: 'mono' }, id), h('br'), refs.host),
    refs.badges,
    h('td', { class: 'load' }, bar, refs.loadText),
    refs.processed,
    refs.errors,
    h('td', { class: 'actions' }, refs.drain),
  )
  // Rows keep their place (sorted by id): moving a row would take the keyboard focus from its button.
  const after = [...rows.keys()].sort().find((other) => other > id)
  $('workers').insertBefore(tr, after === undefined ? null : rows.get(after).tr)
  return { tr, refs, goneAt: undefined }
}

function drawWorker(row, w, isGone) {
  const { refs } = row
  const badges = badgesOf(w, isGone)
  row.tr.dataset.state = badges[0][0]
  refs.badges.replaceChildren(...badges.map(([cls, text]) => h('span', { class: `badge ${cls}` }, text)))
  refs.host.textContent = `${w.host} · pid ${w.pid}`
  const cap = Math.max(w.capacity, w.inflight + w.queueLen, 1)
  refs.inflight.style.width = `${(100 * w.inflight) / cap}%`
  refs.queued.style.width = `${(100 * w.queueLen) / cap}%`
  refs.loadText.textContent = `${w.inflight} running · ${w.queueLen} queued · capacity ${w.capacity}`
  refs.processed.textContent = num(w.processed)
  refs.errors.textContent = num(w.errors)
  refs.drain.disabled = isGone || !w.alive || w.state === 'draining'
}

export function drawWorkers(snap) {
  const seen = new Set()
  for (const w of snap.workers) {
    seen.add(w.workerId)
    const row = rows.get(w.workerId) ?? newRow(w.workerId)
    rows.set(w.workerId, row)
    row.goneAt = undefined
    row.last = w
    drawWorker(row, w, false)
  }
  for (const [id, row] of rows) {
    if (seen.has(id)) continue
    row.goneAt ??= Date.now()
    if (Date.now() - row.goneAt > GONE_MS) {
      row.tr.remove()
      rows.delete(id)
    } else drawWorker(row, row.last, true)
  }
  $('no-workers').hidden = rows.size > 0
  $('workers-table').hidden = rows.size === 0
}
