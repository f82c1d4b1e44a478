#!/usr/bin/env bun
// download-gate admin CLI: issue, list and revoke download tokens on a running service, through the typed client.
import { runCommandLine } from './commands'

process.exitCode = await runCommandLine(Bun.argv.slice(2), process.env)
