// Small helpers of the dashboard: elements, number formats, the status line, API calls, the
// confirmation dialog.

export const $ = (id) => document.getElementById(id)

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') el.className = v
    else if (k === 'onclick') el.addEventListener('click', v)
    else el.setAttribute(k, v)
  }
  el.append(...children)
  return el
}

export const num = (n) => (Number.isFinite(n) ? n.toLocaleString('en-US') : '–')
export const rate = (n) =>
  n === null ? '–' : n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1)
export const ms = (n) =>
  n === undefined || n === null
    ? '–'
    : n < 1000
      ? `${n < 10 && n > 0 ? n.toFixed(1) : Math.round(n)} ms`
      : `${(n / 1000).toFixed(2)} s`
export const secs = (n) => `${Math.ceil(n / 1000)} s`
export const maxOf = (values) =>
  values.reduce((m, v) => (v !== undefined && v > (m ?? -1) ? v : m), undefined)

export function say(text, kind = 'ok') {
  const el = $('status')
  el.textContent = text
  el.dataset.kind = kind
}

export async function call(method, path, body) {
  const init = { method, headers: { accept: 'application/json' } }
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json'
    init.body = JSON.stringify(body)
  }
  const res = await fetch(path, init)
  const json = await res.json().catch(() => ({}))
  if (!res.ok) throw new Error(json.error?.message ?? `${method} ${path} answered ${res.status}`)
  return json
}

// An in-page confirmation (a <dialog>, which keeps the keyboard focus inside it); Cancel is the default.
export function ask(title, text, okLabel) {
  const dialog = $('confirm')
  $('confirm-title').textContent = title
  $('confirm-text').textContent = text
  $('confirm-ok').textContent = okLabel
  dialog.returnValue = ''
  dialog.showModal()
  return new Promise((resolve) =>
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true }),
  )
}
