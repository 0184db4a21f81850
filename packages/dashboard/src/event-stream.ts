import type { ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import type { FeedMessage, SnapshotFeed } from './snapshot-feed.js'

/** The server-sent events of one message. */
export function formatEvent(message: FeedMessage): string {
  return `event: ${message.event}\nid: ${message.id}\ndata: ${JSON.stringify(message.data)}\n\n`
}

/**
 * `GET events`: a server-sent event per read of the pool (`snapshot`, or `failure` when Redis
 * cannot be read), until the page goes away. `streams` holds the open responses, so that closing
 * the server can end them.
 */
export function eventStreamRoute(
  app: FastifyInstance,
  feed: SnapshotFeed,
  streams: Set<ServerResponse>,
): void {
  app.get('/events', (_req, reply) => {
    reply.hijack()
    const raw = reply.raw
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // Proxies such as nginx would otherwise hold the events back.
      'x-accel-buffering': 'no',
    })
    raw.write('retry: 2000\n\n')
    // A page that reads slower than the pool changes skips snapshots instead of queueing them:
    // the next one it gets is complete on its own.
    let isBlocked = false
    raw.on('drain', () => {
      isBlocked = false
    })
    const unsubscribe = feed.subscribe((message) => {
      if (isBlocked || raw.writableEnded || raw.destroyed) return
      isBlocked = !raw.write(formatEvent(message))
    })
    streams.add(raw)
    raw.on('close', () => {
      unsubscribe()
      streams.delete(raw)
    })
  })
}
