#!/usr/bin/env node
import { Command } from 'commander'
import { cancelCommand } from './commands/cancel.js'
import { deadCommand } from './commands/dead.js'
import { demoCommand } from './commands/demo.js'
import { drainCommand } from './commands/drain.js'
import { fakeGeminiCommand } from './commands/fake-gemini.js'
import { gatewayCommand } from './commands/gateway.js'
import { inspectCommand } from './commands/inspect.js'
import { limitsCommand } from './commands/limits.js'
import { resumeCommand } from './commands/resume.js'
import { submitCommand } from './commands/submit.js'
import { workerCommand } from './commands/worker.js'
import { failWith } from './output.js'

const program = new Command()
  .name('hedgeyard')
  .description('Distributed request dispatcher on Redis: workers, submits, inspection, demo')
  .showHelpAfterError()
workerCommand(program)
submitCommand(program)
inspectCommand(program)
drainCommand(program)
cancelCommand(program)
gatewayCommand(program)
limitsCommand(program)
resumeCommand(program)
deadCommand(program)
demoCommand(program)
fakeGeminiCommand(program)

program.parseAsync(process.argv).catch(failWith)
