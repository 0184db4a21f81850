import { type Logger, pino } from 'pino'
import pretty from 'pino-pretty'

/**
 * The CLI owns the root logger: pretty on a terminal, JSON lines otherwise (for log shippers).
 * `HEDGEYARD_LOG_LEVEL` sets the level (default info). Logs go to stderr when stdout carries
 * the command's output.
 */
export function createLogger(options: { toStderr?: boolean } = {}): Logger {
  const level = process.env.HEDGEYARD_LOG_LEVEL ?? 'info'
  const fd = options.toStderr ? 2 : 1
  const isTty = fd === 1 ? process.stdout.isTTY : process.stderr.isTTY
  if (isTty) return pino({ level }, pretty({ colorize: true, destination: fd, ignore: 'pid,hostname' }))
  return pino({ level }, pino.destination({ dest: fd, sync: true }))
}
