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

export const SECRET = 's'.repeat(32)
export const API_KEY = 'k'.repeat(16)

/** A production environment that loads; tests break one variable at a time. */
export const PRODUCTION: Env = {
	NODE_ENV: 'production',
	JWT_SECRET: SECRET,
	REDIS_URL: 'redis://127.0.0.1:6379',
	API_KEYS: API_KEY,
}
