/** What the progress line shows: requests done, and a few words after the rate. */
export interface ProgressStatus {
  done: number
  detail: string
}

/**
 * A one-line progress display on stderr: redrawn in place on a terminal, a plain line every few
 * seconds otherwise (so CI logs stay readable).
 */
export class Progress {
  readonly #total: number
  readonly #isTty: boolean
  readonly #startedAt = Date.now()
  #lastPrinted = 0
  readonly #status: () => ProgressStatus
  #timer: NodeJS.Timeout | undefined

  constructor(total: number, status: () => ProgressStatus) {
    this.#total = total
    this.#status = status
    this.#isTty = process.stderr.isTTY === true
  }

  start(): void {
    this.#timer = setInterval(() => this.#draw(false), this.#isTty ? 100 : 2_000)
  }

  /** Draws the last line; `isShown` false only ends the line (a run cut short). */
  stop(isShown = true): void {
    clearInterval(this.#timer)
    if (isShown) this.#draw(true)
    if (this.#isTty) process.stderr.write('\n')
  }

  #draw(isFinal: boolean): void {
    const { done, detail } = this.#status()
    const width = 30
    const filled = Math.round((done / this.#total) * width)
    const elapsedS = (Date.now() - this.#startedAt) / 1000
    const rate = elapsedS > 0 ? Math.round(done / elapsedS) : 0
    const line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${this.#total} requests  ${rate} req/s  ${detail}`
    if (this.#isTty) process.stderr.write(`\r${line}\x1b[K`)
    else if (isFinal || Date.now() - this.#lastPrinted >= 1_900) process.stderr.write(`${line}\n`)
    this.#lastPrinted = Date.now()
  }
}
