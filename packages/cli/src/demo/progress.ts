/**
 * A one-line progress display on stderr: redrawn in place on a terminal, a plain line every few
 * seconds otherwise (so CI logs stay readable).
 */
export class Progress {
  readonly #total: number
  readonly #isTty: boolean
  readonly #startedAt = Date.now()
  #lastPrinted = 0
  readonly #status: () => { done: number; failed: number; p50Ms: number }
  #timer: NodeJS.Timeout | undefined

  constructor(total: number, status: () => { done: number; failed: number; p50Ms: number }) {
    this.#total = total
    this.#status = status
    this.#isTty = process.stderr.isTTY === true
  }

  start(): void {
    this.#timer = setInterval(() => this.#draw(false), this.#isTty ? 100 : 2_000)
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#draw(true)
    if (this.#isTty) process.stderr.write('\n')
  }

  #draw(isFinal: boolean): void {
    const { done, failed, p50Ms } = this.#status()
    const width = 30
    const filled = Math.round((done / this.#total) * width)
    const elapsedS = (Date.now() - this.#startedAt) / 1000
    const rate = elapsedS > 0 ? Math.round(done / elapsedS) : 0
    const line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${this.#total} requests  ${rate} req/s  p50 ${p50Ms.toFixed(0)} ms  failed ${failed}`
    if (this.#isTty) process.stderr.write(`\r${line}`)
    else if (isFinal || Date.now() - this.#lastPrinted >= 1_900) process.stderr.write(`${line}\n`)
    this.#lastPrinted = Date.now()
  }
}
