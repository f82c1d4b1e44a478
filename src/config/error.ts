import type { EnvVar } from './schema'

/** A configuration value is wrong; `message` is the one line printed before exit 1, `variable` the one to fix. */
export class ConfigError extends Error {
	constructor(
		readonly variable: EnvVar,
		problem: string,
	) {
		super(`${variable}: ${problem}`)
		this.name = 'ConfigError'
	}
}
