import type { FastifyInstance } from 'fastify'
import { type RouteContext, sendFailure } from '../gateway.js'
import { failure, httpFailureOf } from '../google-error.js'
import { checkGenerateBody } from '../request-body.js'

/**
 * The seed's API: `POST /generate` takes a GenerateContentRequest and answers 202 with the job id
 * once a worker has the job; `GET /jobs/:id` answers Pending, Completed or Failed from any instance.
 */
export function seedRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.post('/generate', async (req, reply) => {
    let body: Record<string, unknown>
    try {
      body = checkGenerateBody(req.body, undefined)
    } catch (err) {
      return sendFailure(reply, failure(400, (err as Error).message))
    }
    try {
      // Streamed, so that the job's state (and its chunks) can be read from any instance.
      const stream = ctx.dispatcher.stream(body, ctx.submitOptions(req))
      await stream.queued
      // Nobody reads this job's chunks here: drain them, so its end is read and its state freed.
      void (async () => {
        try {
          for await (const _ of stream) {
            // dropped: GET /jobs/:id reads the result from Redis
          }
        } catch {
          // its failure is in Redis too
        }
      })()
      return reply.code(202).send({ job_id: stream.jobId })
    } catch (err) {
      return sendFailure(reply, httpFailureOf(err))
    }
  })

  app.get<{ Params: { id: string } }>('/jobs/:id', async (req, reply) => {
    try {
      const state = await ctx.dispatcher.getJob(req.params.id)
      switch (state.status) {
        case 'pending':
          return { status: 'Pending' }
        case 'completed':
          return { status: 'Completed', result: state.result }
        case 'failed':
          return { status: 'Failed', result: state.error.message }
        default:
          return sendFailure(
            reply,
            failure(404, `no job ${req.params.id} (unknown, or its result has expired)`),
          )
      }
    } catch (err) {
      return sendFailure(reply, httpFailureOf(err))
    }
  })
}
