#!/usr/bin/env node
import { Command } from 'commander'
import { demoCommand } from './commands/demo.js'
import { inspectCommand } from './commands/inspect.js'
import { submitCommand } from './commands/submit.js'
import { workerCommand } from './commands/worker.js'
import { failWith } from './output.js'

const program = new Command()
  .name('switchyard')
  .description('Distributed request dispatcher on Redis: workers, submits, inspection, demo')
  .showHelpAfterError()
workerCommand(program)
submitCommand(program)
inspectCommand(program)
demoCommand(program)

program.parseAsync(process.argv).catch(failWith)
