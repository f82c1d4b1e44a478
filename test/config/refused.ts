import { expect } from 'bun:test'
import { type Config, ConfigError, type Env, type EnvVar, loadConfig } from '../../src/config'

/** The ConfigError that `env` causes; fails the test when it loads or throws something else. */
export function configError(env: Env): ConfigError {
	let config: Config
	try {
		config = loadConfig(env)
	} catch (err) {
		expect(err).toBeInstanceOf(ConfigError)
		if (!(err instanceof ConfigError)) throw err
		return err
	}
	throw new Error(`expected a ConfigError, but it loaded: ${JSON.stringify(config)}`)
}

/** Asserts `env` is refused because of `variable`, in one line that names it (and every name in `alsoNames`). */
export function expectRefused(env: Env, variable: EnvVar, ...alsoNames: EnvVar[]): ConfigError {
	const err = configError(env)
	expect(err.variable).toBe(variable)
	expect(err.message.startsWith(`${variable}: `)).toBe(true)
	expect(err.message).not.toMatch(/[\r\n]/)
	expect(err.message.slice(variable.length + 2).trim()).not.toBe('')
	for (const other of alsoNames) expect(err.message).toContain(other)
	return err
}
