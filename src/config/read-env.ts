import { KindGuard, type TSchema } from '@sinclair/typebox'
import { TransformDecodeError, Value } from '@sinclair/typebox/value'
import { ConfigError } from './error'
import { Invalid, quote } from './parsers'
import { type Env, EnvSchema, type EnvValues, type EnvVar, KNOWN_ENV_VARS, schemaOf } from './schema'

const BOOLEAN_WORDS = new Map([
	['1', true],
	['true', true],
	['yes', true],
	['on', true],
	['0', false],
	['false', false],
	['no', false],
	['off', false],
])

const isEnvVar = (name: string | undefined): name is EnvVar =>
	name !== undefined && Object.hasOwn(EnvSchema.properties, name)

/** `/PORT` or `/REDIS_SENTINELS/0` → the variable it is about. */
function variableAt(path: string): EnvVar {
	const name = path.split('/')[1]
	if (!isEnvVar(name)) throw new Error(`config schema error at ${path}`)
	return name
}

/** Turns a raw string into what the schema kind expects; what cannot be coerced stays a string and fails the check. */
function coerce(schema: TSchema, raw: string): unknown {
	if (KindGuard.IsTransform(schema)) return raw
	if (KindGuard.IsInteger(schema)) return /^\d+$/.test(raw) ? Number(raw) : raw
	if (KindGuard.IsBoolean(schema)) return BOOLEAN_WORDS.get(raw.toLowerCase()) ?? raw
	if (KindGuard.IsUnion(schema)) return raw.toLowerCase()
	return raw
}

/** The one-line problem for a value that failed the schema check. */
function problem(name: EnvVar, raw: string): string {
	const schema = schemaOf(name)
	const got = schema.secret === true ? '' : `, got ${quote(raw)}`
	if (typeof schema.error === 'string') return `${schema.error}${got}`
	if (KindGuard.IsInteger(schema)) return `must be a whole number from ${schema.minimum} to ${schema.maximum}${got}`
	if (KindGuard.IsBoolean(schema)) return `must be true or false${got}`
	if (KindGuard.IsUnion(schema))
		return `must be one of ${schema.anyOf.map((s) => (KindGuard.IsLiteral(s) ? s.const : '?')).join(', ')}${got}`
	return `is not valid${got}`
}

/**
 * Validates and decodes each variable on its own (the rules that span
 * variables come after, in `loadConfig`); `given` holds the variables that
 * were set. Throws `ConfigError` naming the first bad variable.
 */
export function readEnv(env: Env): { values: EnvValues; given: ReadonlySet<EnvVar> } {
	const raw: Partial<Record<EnvVar, string>> = {}
	const input: Record<string, unknown> = {}
	for (const name of KNOWN_ENV_VARS) {
		const value = env[name]?.trim()
		if (value === undefined || value === '') continue
		// A newline or other control character is always a pasting mistake, and would split log lines.
		if (/\p{Cc}/u.test(value)) throw new ConfigError(name, 'must not contain control characters such as newlines')
		raw[name] = value
		input[name] = coerce(schemaOf(name), value)
	}
	const given = new Set(Object.keys(input).filter(isEnvVar))
	const withDefaults = Value.Default(EnvSchema, input)
	const failed = Value.Errors(EnvSchema, withDefaults).First()
	if (failed) {
		const name = variableAt(failed.path)
		throw new ConfigError(name, problem(name, raw[name] ?? ''))
	}
	try {
		return { values: Value.Decode(EnvSchema, withDefaults), given }
	} catch (err) {
		if (err instanceof TransformDecodeError && err.error instanceof Invalid)
			throw new ConfigError(variableAt(err.path), err.error.message)
		throw err
	}
}
