import type { Command } from 'commander'
import { checkScenario, DEMO_DEFAULTS, type DemoScenario, describeScenario } from '../demo/scenario.js'
import { intOption } from '../options.js'

interface DemoCliOptions extends DemoScenario {
  dryRun?: boolean
}

/**
 * `hedgeyard demo`: the seed's scenario end to end on this machine (Redis, the Gemini simulator,
 * worker and gateway processes, chat sessions through the official SDK), with a summary.
 */
export function demoCommand(program: Command): void {
  const d = DEMO_DEFAULTS
  program
    .command('demo')
    .description(
      'chat sessions through gateway processes onto worker processes with the Gemini handler, against the Gemini simulator, with the official SDK (starts its own redis-server when none is configured)',
    )
    .option(
      '--redis <url>',
      'use this Redis instead of starting one (env HEDGEYARD_REDIS_URL)',
      process.env.HEDGEYARD_REDIS_URL,
    )
    .option('--pool <name>', 'pool name', d.pool)
    .option('--prefix <prefix>', 'key prefix', d.prefix)
    .option('--processes <n>', 'worker processes', intOption('--processes'), d.processes)
    .option('--count <n>', 'workers per process', intOption('--count'), d.count)
    .option('--concurrency <n>', 'jobs one worker runs at once', intOption('--concurrency'), d.concurrency)
    .option(
      '--gateways <n>',
      'gateway processes; turns alternate between them',
      intOption('--gateways'),
      d.gateways,
    )
    .option('--sessions <n>', 'chat sessions, every other one streamed', intOption('--sessions'), d.sessions)
    .option('--turns <n>', 'turns per session', intOption('--turns'), d.turns)
    .option('--parallel <n>', 'sessions talking at once', intOption('--parallel'), d.parallel)
    .option(
      '--median-ms <ms>',
      "the simulated model's median time to the first token",
      intOption('--median-ms'),
      d.medianMs,
    )
    .option(
      '--tokens-per-second <n>',
      'words the simulated model streams per second',
      intOption('--tokens-per-second'),
      d.tokensPerSecond,
    )
    .option(
      '--model-quota-rps <n>',
      "the simulated model's quota: requests per second on the workers' API key (0: none)",
      intOption('--model-quota-rps'),
      d.modelQuotaRps,
    )
    .option(
      '--pool-quota-rps <n>',
      "the pool's quota over every gateway, requests per second (0: none)",
      intOption('--pool-quota-rps'),
      d.poolQuotaRps,
    )
    .option('--dry-run', 'print the scenario and exit, starting nothing')
    .action(async ({ dryRun, ...options }: DemoCliOptions) => {
      const scenario = checkScenario(options)
      if (dryRun) {
        process.stdout.write(`${describeScenario(scenario).join('\n')}\n`)
        return
      }
      // Loaded here, not at the top: the other commands need not load the Gemini SDK.
      const { runDemo } = await import('../demo/run-demo.js')
      await runDemo(scenario)
    })
}
