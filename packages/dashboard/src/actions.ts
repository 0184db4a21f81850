import type { FastifyInstance, FastifyReply } from 'fastify'
import {
  type DeadLetter,
  drainWorkers,
  HedgeyardError,
  inspectPool,
  listDeadLetters,
  type PoolRef,
  purgeDeadLetters,
  retryDeadLetters,
} from 'hedgeyard'

/** How much of a dead letter's payload the list shows: a letter may be a request too large to run. */
export const PAYLOAD_PREVIEW_CHARS = 500
/** Most dead letters one call lists, retries or purges. */
export const MAX_DEAD_IDS = 1_000

const WORKER_ID = /^[A-Za-z0-9_.:-]{1,100}$/
const DEAD_ID = /^\d{1,20}-\d{1,20}$/

function invalid(message: string): HedgeyardError {
  return new HedgeyardError('INVALID_ARGUMENT', message)
}

/** Sends `{ error: { code, message } }` with an HTTP status. */
export function sendError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).send({ error: { code, message } })
}

function objectBody(body: unknown, example: string): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid(`the body must be a JSON object such as ${example} (content-type: application/json)`)
  }
  return body as Record<string, unknown>
}

function deadIdsOf(body: unknown): string[] {
  const { deadIds } = objectBody(body, '{"deadIds": ["1700000000000-0"]}')
  if (!Array.isArray(deadIds) || deadIds.length === 0 || deadIds.length > MAX_DEAD_IDS) {
    throw invalid(
      `deadIds must be an array of 1 to ${MAX_DEAD_IDS} dead-letter ids (got ${describe(deadIds)})`,
    )
  }
  for (const id of deadIds) {
    if (typeof id !== 'string' || !DEAD_ID.test(id)) {
      throw invalid(`deadIds must hold dead-letter ids such as 1700000000000-0 (got ${describe(id)})`)
    }
  }
  return deadIds as string[]
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing'
  const text = JSON.stringify(value)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

/** A dead letter as the page lists it: the payload cut to a preview, with its full size. */
function listed(letter: DeadLetter) {
  const { payload, ...rest } = letter
  return {
    ...rest,
    payloadPreview:
      payload.length > PAYLOAD_PREVIEW_CHARS ? `${payload.slice(0, PAYLOAD_PREVIEW_CHARS)}…` : payload,
    payloadBytes: Buffer.byteLength(payload),
  }
}

/** The dashboard's actions: drain a worker, list, retry and purge dead letters. */
export function actionRoutes(app: FastifyInstance, ref: PoolRef): void {
  app.post('/api/drain', async (req, reply) => {
    const { workerId } = objectBody(req.body, '{"workerId": "w-1"}')
    if (typeof workerId !== 'string' || !WORKER_ID.test(workerId)) {
      throw invalid(
        `workerId must be a worker's id: 1-100 letters, digits, '_', '.', ':' or '-' (got ${describe(workerId)})`,
      )
    }
    const worker = (await inspectPool(ref)).find((w) => w.workerId === workerId)
    if (worker === undefined) {
      return sendError(reply, 404, 'NOT_FOUND', `no worker '${workerId}' in pool '${ref.pool}'`)
    }
    if (!worker.alive) {
      return sendError(
        reply,
        409,
        'NOT_ALIVE',
        `worker '${workerId}' is not alive (its lease ended): nothing of it runs to drain; a live worker's rescue moves its jobs`,
      )
    }
    if ((await drainWorkers(ref, [workerId])).length === 0) {
      return sendError(reply, 404, 'NOT_FOUND', `worker '${workerId}' left pool '${ref.pool}'`)
    }
    return { draining: workerId }
  })

  app.get('/api/dead', async (req) => {
    const raw = (req.query as Record<string, unknown>).count
    const count = raw === undefined ? 100 : Number(raw)
    if (!Number.isInteger(count) || count < 1 || count > MAX_DEAD_IDS) {
      throw invalid(`count must be a whole number from 1 to ${MAX_DEAD_IDS} (got ${describe(raw)})`)
    }
    return { deadLetters: (await listDeadLetters({ ...ref, count })).map(listed) }
  })

  app.post('/api/dead/retry', async (req) => {
    const deadIds = deadIdsOf(req.body)
    const retried = await retryDeadLetters({ ...ref, deadIds })
    const moved = new Set(retried.map((r) => r.deadId))
    // A letter stays when no worker had room for it, or when it was already gone.
    return { retried, kept: deadIds.filter((id) => !moved.has(id)) }
  })

  app.post('/api/dead/purge', async (req) => {
    return { purged: await purgeDeadLetters({ ...ref, deadIds: deadIdsOf(req.body) }) }
  })
}
