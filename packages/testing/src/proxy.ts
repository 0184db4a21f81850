import { connect, createServer, type Server, type Socket } from 'node:net'

/** A TCP proxy in front of Redis that a test can cut, to make a client lose its connection for a while. */
export interface CuttableProxy {
  url: string
  /** Drops every connection and refuses new ones until `restore`. */
  cut(): void
  /**
   * From now on, what Redis sends is thrown away while commands still reach it: the replies of the
   * commands sent meanwhile are lost, as when a connection drops after a command ran. Until `restore`.
   */
  dropReplies(): void
  restore(): void
  close(): Promise<void>
}

/** Starts a proxy on a free loopback port forwarding to `target` (a redis:// URL). */
export async function startProxy(target: string): Promise<CuttableProxy> {
  const { hostname, port } = new URL(target)
  const sockets = new Set<Socket>()
  let isCut = false
  let isDroppingReplies = false
  const server: Server = createServer((inbound) => {
    if (isCut) {
      inbound.destroy()
      return
    }
    const outbound = connect(Number(port), hostname)
    sockets.add(inbound)
    sockets.add(outbound)
    inbound.pipe(outbound)
    outbound.on('data', (chunk: Buffer) => {
      if (!isDroppingReplies) inbound.write(chunk)
    })
    const close = () => {
      inbound.destroy()
      outbound.destroy()
      sockets.delete(inbound)
      sockets.delete(outbound)
    }
    inbound.on('error', close)
    outbound.on('error', close)
    inbound.on('close', close)
    outbound.on('close', close)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const proxyPort = typeof address === 'object' && address ? address.port : 0
  return {
    url: `redis://127.0.0.1:${proxyPort}`,
    cut() {
      isCut = true
      for (const s of sockets) s.destroy()
      sockets.clear()
    },
    dropReplies() {
      isDroppingReplies = true
    },
    restore() {
      isCut = false
      isDroppingReplies = false
    },
    close() {
      for (const s of sockets) s.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}
