import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

const JS = 'text/javascript; charset=utf-8'

/**
 * The page's files, in the package's `assets/` folder, served as they are (hand-written: no build
 * step, no framework, nothing from elsewhere). `app.js` imports the other modules.
 */
const ASSETS = {
  'index.html': 'text/html; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'app.js': JS,
  'chart.js': JS,
  'dom.js': JS,
  'workers.js': JS,
} as const

type AssetName = keyof typeof ASSETS

interface Asset {
  type: string
  body: Buffer
  etag: string
}

/** Nothing but the page's own files, no framing: the page has buttons that drain workers. */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
}

/**
 * Reads the page's files once.
 * @throws Error naming the file when one is missing (a package installed without `assets/`).
 */
export function loadAssets(): Map<AssetName, Asset> {
  const dir = new URL('../assets/', import.meta.url)
  const assets = new Map<AssetName, Asset>()
  for (const [name, type] of Object.entries(ASSETS) as [AssetName, string][]) {
    const path = fileURLToPath(new URL(name, dir))
    let body: Buffer
    try {
      body = readFileSync(path)
    } catch (err) {
      throw new Error(`the dashboard's page is missing ${path}: reinstall @hedgeyard/dashboard`, {
        cause: err,
      })
    }
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`
    assets.set(name, { type, body, etag })
  }
  return assets
}

function serve(asset: Asset, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.headers({ ...PAGE_HEADERS, etag: asset.etag, 'cache-control': 'no-cache' })
  if (req.headers['if-none-match'] === asset.etag) return reply.code(304).send()
  return reply.type(asset.type).send(asset.body)
}

/** The page at `<base>/` (`<base>` redirects there, so that its relative links resolve) and its files. */
export function pageRoutes(app: FastifyInstance, assets: Map<AssetName, Asset>): void {
  const get = (name: AssetName) => assets.get(name) as Asset
  app.get('/', { prefixTrailingSlash: 'slash' }, (req, reply) => serve(get('index.html'), req, reply))
  if (app.prefix !== '') {
    app.get('', { prefixTrailingSlash: 'no-slash' }, (req, reply) => {
      const [path = '', query] = req.url.split('?')
      const last = path.slice(path.lastIndexOf('/') + 1)
      return reply.redirect(`${last}/${query === undefined ? '' : `?${query}`}`, 308)
    })
  }
  for (const name of assets.keys()) {
    if (name !== 'index.html') app.get(`/${name}`, (req, reply) => serve(get(name), req, reply))
  }
}
