#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { Command } from 'commander'
import { cancelCommand } from './commands/cancel.js'
import { dashboardCommand } from './commands/dashboard.js'
import { deadCommand } from './commands/dead.js'
import { demoCommand } from './commands/demo.js'
import { drainCommand } from './commands/drain.js'
import { exporterCommand } from './commands/exporter.js'
import { fakeGeminiCommand } from './commands/fake-gemini.js'
import { gatewayCommand } from './commands/gateway.js'
import { inspectCommand } from './commands/inspect.js'
import { limitsCommand } from './commands/limits.js'
import { poolCommand } from './commands/pool.js'
import { resultCommand } from './commands/result.js'
import { resumeCommand } from './commands/resume.js'
import { submitCommand } from './commands/submit.js'
import { topCommand } from './commands/top.js'
import { workerCommand } from './commands/worker.js'
import { failWith } from './output.js'

const version = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version

const program = new Command()
  .name('hedgeyard')
  .version(version, '--version', 'print the version')
  .description('Distributed request dispatcher on Redis: workers, submits, inspection, demo')
  .showHelpAfterError()
workerCommand(program)
submitCommand(program)
inspectCommand(program)
topCommand(program)
exporterCommand(program)
drainCommand(program)
cancelCommand(program)
gatewayCommand(program)
dashboardCommand(program)
limitsCommand(program)
poolCommand(program)
resumeCommand(program)
resultCommand(program)
deadCommand(program)
demoCommand(program)
fakeGeminiCommand(program)

program.parseAsync(process.argv).catch(failWith)
