import { createJobStream, type JobStream } from '../producer/job-stream.js'

/**
 * A stream whose job is followed once `open` says where: `Cells.resume` returns it at once, while
 * it looks for the cell that holds the job. Chunks, the end and `queued` are passed on from the
 * stream `open` gives; the reader's pace holds the inner stream back (its reads pause when this one
 * has a full buffer). A reader that leaves early leaves the inner stream too, which cancels the job,
 * as leaving any stream does; one that leaves before the job was found calls `cancel`.
 */
export function forwardStream<Chunk, Res>(
  jobId: string,
  open: () => Promise<JobStream<Chunk, Res>>,
  cancel: () => void,
): JobStream<Chunk, Res> {
  let leave: (() => void) | undefined
  let hasLeft = false
  let drained: (() => void) | undefined
  const { stream, sink } = createJobStream<Chunk, Res>(
    jobId,
    () => {
      hasLeft = true
      if (leave === undefined) cancel()
      else leave()
    },
    () => {
      const wake = drained
      drained = undefined
      wake?.()
    },
  )
  const pump = async () => {
    const inner = await open()
    const it = inner[Symbol.asyncIterator]()
    leave = () => void it.return?.()
    if (hasLeft) leave()
    inner.queued.then(
      () => sink.markQueued(),
      () => {},
    )
    for (;;) {
      if (!sink.wantsMore() && !sink.isEnded && !hasLeft) {
        await new Promise<void>((resolve) => {
          drained = resolve
        })
      }
      const next = await it.next()
      if (next.done) break
      sink.push(next.value)
    }
    sink.end(undefined, await inner.result)
  }
  pump().catch((err: unknown) => sink.end(err))
  return stream
}
