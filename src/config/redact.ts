import { type EnvValues, KNOWN_ENV_VARS, SECRET_ENV_VARS } from './schema'

// What the start-up log line may show of the configuration. Which values are
// secret comes from the schema alone: a variable flagged `secret` has its value
// masked wherever it appears, without naming it here or in the Config.

const MASK = '***'

// Beside the config, never on it: nothing that serialises a config can carry them.
const secretsOf = new WeakMap<object, readonly string[]>()

/** Every string inside `value`: itself, or the entries of a list, or the fields of an object, at any depth. */
function stringsIn(value: unknown): string[] {
	if (typeof value === 'string') return [value]
	if (typeof value === 'object' && value !== null) return Object.values(value).flatMap(stringsIn)
	return []
}

/** The password of a URL, as written in `raw` and as the URL parser serialises it (they differ for `@` or a space). */
function urlPasswords(raw: string): string[] {
	if (!URL.canParse(raw)) return []
	const { password } = new URL(raw)
	if (password === '') return []
	const authority = raw.slice(raw.indexOf('//') + 2).split(/[/?#\\]/, 1)[0] ?? ''
	const userinfo = authority.slice(0, authority.lastIndexOf('@'))
	return [password, userinfo.slice(userinfo.indexOf(':') + 1)]
}

/**
 * The strings the start-up log must not show: the value of every variable
 * flagged `secret` (each list entry on its own) and the password of any URL
 * any variable holds. `values` are the decoded variables, with the values in
 * effect (a generated `JWT_SECRET` included).
 */
export function secretValues(values: EnvValues): string[] {
	const flagged = SECRET_ENV_VARS.flatMap((name) => stringsIn(values[name]))
	const inUrls = KNOWN_ENV_VARS.flatMap((name) => stringsIn(values[name])).flatMap(urlPasswords)
	return [...flagged, ...inUrls].filter((s) => s !== '')
}

/** Keeps `secrets` beside `config` for `redactedConfig`; returns `config`. */
export function rememberSecrets<C extends object>(config: C, secrets: readonly string[]): C {
	// Longest first, so a secret that contains another one is masked whole.
	secretsOf.set(config, Object.freeze([...new Set(secrets)].sort((a, b) => b.length - a.length)))
	return config
}

function mask(value: unknown, secrets: readonly string[]): unknown {
	if (typeof value === 'string') return secrets.reduce((s, secret) => s.replaceAll(secret, MASK), value)
	if (Array.isArray(value)) return value.map((item) => mask(item, secrets))
	if (typeof value === 'object' && value !== null)
		return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, mask(item, secrets)]))
	return value
}

/**
 * The effective configuration for the start-up log: a copy in which every
 * secret value is `***` wherever it appears (in a list, each entry; in a URL,
 * the password). Throws when `config` was not returned by `loadConfig`, whose
 * secrets alone it knows.
 */
export function redactedConfig(config: object): Record<string, unknown> {
	const secrets = secretsOf.get(config)
	if (secrets === undefined) throw new Error('redactedConfig needs a config returned by loadConfig')
	return Object.fromEntries(Object.entries(config).map(([key, value]) => [key, mask(value, secrets)]))
}
