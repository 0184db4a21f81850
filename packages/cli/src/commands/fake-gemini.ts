import type { FakeGeminiBehaviour } from '@hedgeyard/genai'
import type { Command } from 'commander'
import { createLogger } from '../logger.js'
import { intOption } from '../options.js'

interface FakeGeminiCliOptions extends Partial<FakeGeminiBehaviour> {
  port: number
  host: string
}

/** Parses a non-negative number option (fractions allowed), naming it in the error. */
function numberOption(name: string): (value: string) => number {
  return (value: string) => {
    const n = Number(value)
    if (value.trim() === '' || !Number.isFinite(n) || n < 0) {
      throw new Error(`${name} must be a non-negative number (got '${value}')`)
    }
    return n
  }
}

/** `hedgeyard fake-gemini`: a Gemini API simulator for demos, tests and benchmarks. */
export function fakeGeminiCommand(program: Command): void {
  program
    .command('fake-gemini')
    .description(
      'serve a simulated Gemini API (generateContent, streamGenerateContent) with latency, quota and outages',
    )
    .option('--port <n>', 'port to listen on (0: a free one)', intOption('--port'), 0)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--median-ms <ms>', 'median time to the first token (default 300)', numberOption('--median-ms'))
    .option(
      '--sigma <n>',
      'sigma of the lognormal latency, 0 for none (default 0.5)',
      numberOption('--sigma'),
    )
    .option(
      '--stall-rate <share>',
      'share of requests (0-1) that stall (default 0)',
      numberOption('--stall-rate'),
    )
    .option('--stall-ms <ms>', 'how long a stall lasts (default 10000)', numberOption('--stall-ms'))
    .option(
      '--tokens-per-second <n>',
      'words streamed per second, 0 for all at once (default 50)',
      numberOption('--tokens-per-second'),
    )
    .option('--chunk-words <n>', 'words per streamed chunk (default 4)', intOption('--chunk-words'))
    .option('--reply-words <n>', 'words per reply (default 24)', intOption('--reply-words'))
    .option(
      '--quota-rps <n>',
      'requests per second per API key, 0 for no quota (default 0)',
      intOption('--quota-rps'),
    )
    .option(
      '--error-rate <share>',
      'share of requests (0-1) answered 503 (default 0)',
      numberOption('--error-rate'),
    )
    .action(async ({ port, host, ...behaviour }: FakeGeminiCliOptions) => {
      // Loaded here, not at the top: the other commands need not load the Gemini SDK.
      const { startFakeGemini } = await import('@hedgeyard/genai')
      const logger = createLogger()
      const sim = await startFakeGemini({ port, host, ...behaviour })
      logger.info({ url: sim.url, ...sim.behaviour() }, 'fake Gemini listening')
      const stop = (signal: string) => {
        logger.info({ signal, totals: sim.stats().totals }, 'fake Gemini stopping')
        void sim.close().then(() => process.exit(0))
      }
      process.once('SIGTERM', () => stop('SIGTERM'))
      process.once('SIGINT', () => stop('SIGINT'))
    })
}
