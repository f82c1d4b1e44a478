import { Type } from '@sinclair/typebox'

// The kinds of variable the schema is built from. Each carries its README
// description; `read-env.ts` coerces raw strings by the kind (integer, flag,
// choice) and leaves `parsed` ones to their parser.

/** Options every variable carries: `description` is its README table row. */
export interface Doc {
	readonly description: string
	/**
	 * The value is a secret: never echoed in an error message, and masked
	 * wherever it appears in the start-up log line (`redact.ts`).
	 */
	readonly secret?: true
	/** What a value that fails the schema check is told (the value is appended). */
	readonly error?: string
}

/** A whole number in [minimum, maximum]. */
export const integer = (options: Doc & { default: number; minimum: number; maximum: number }) => Type.Integer(options)

/** `true`/`false` and their usual spellings (`yes`, `on`, `1` …). */
export const flag = (options: Doc & { default: boolean }) => Type.Boolean(options)

/** A string kept as given (trimmed). */
export const text = (options: Doc & { default?: string; pattern?: string }) => Type.String(options)

/** One of `values`, case-insensitively. */
export const oneOf = <const V extends readonly string[]>(values: V, options: Doc & { default: V[number] }) =>
	// A union built from a list (not a tuple) would decode to `never`; Unsafe names the type and keeps the Union kind.
	Type.Unsafe<V[number]>(
		Type.Union(
			values.map((v) => Type.Literal(v)),
			options,
		),
	)

// Configuration is only ever decoded; nothing writes an environment back.
const neverEncoded = (): never => {
	throw new Error('configuration values are not encoded back into variables')
}

/** A string variable decoded by `parse`, which throws `Invalid` to refuse it. */
export const parsed = <T>(parse: (raw: string) => T, options: Doc & { default?: string }) =>
	Type.Transform(Type.String(options)).Decode(parse).Encode(neverEncoded)
