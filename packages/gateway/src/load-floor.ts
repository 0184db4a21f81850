/**
 * The floor of the gateway's load check (load.ts): one HTTP hop and nothing else. A bare
 * `node:http` server that reads a request's JSON body, submits it with `Dispatcher.submit` and
 * answers with the result as JSON: no framework, no API keys, no checks of the body's shape, no
 * metrics. What the gateway adds over it is the gateway's own work; what it adds over a direct
 * submit is what any HTTP hop costs on the machine.
 *
 *   node packages/gateway/dist/load-floor.js <redis url> <pool>
 *
 * Prints `{"url":"http://127.0.0.1:<port>"}` once it listens.
 */
import { createServer } from 'node:http'
import { Dispatcher } from 'hedgeyard'

const [redis, pool] = process.argv.slice(2)
if (redis === undefined || pool === undefined) {
  process.stderr.write('usage: load-floor.js <redis url> <pool>\n')
  process.exit(2)
}
const d = new Dispatcher({ redis, pool })
const server = createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    let body: unknown
    try {
      body = JSON.parse(Buffer.concat(chunks).toString())
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' })
      res.end('{"error":"the body is not JSON"}')
      return
    }
    d.submit(body).then(
      (result) => {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify(result))
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ error: String(err) }))
      },
    )
  })
})
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as { port: number }
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${address.port}` })}\n`)
})
process.on('SIGTERM', () => {
  server.close()
  void d.close().then(() => process.exit(0))
})
