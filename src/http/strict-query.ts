import { InvalidRequestError } from '../errors'
import { queryParams } from './request-url'

/** One accepted query parameter: the exact text its value must match, and the message when it does not. */
export interface QueryRule {
	readonly pattern: RegExp
	readonly message: string
}

/**
 * Refuses a query string with a parameter not in `rules`, one given twice, or
 * a value not matching its rule, with 400 `invalid_request`. Schemas then
 * convert and bound the values; this keeps what they would quietly accept
 * (`1e3`, `0x10`, ` 5`, `ttl=1&ttl=2`, `max_uses[]=1`, `Max_Uses=1`) from
 * ever meaning something the caller did not write: a mistyped `max_uses`
 * must never issue an unlimited token.
 */
export function assertStrictQuery(request: Request, rules: Readonly<Record<string, QueryRule>>): void {
	const seen = new Set<string>()
	for (const [name, value] of queryParams(request)) {
		const rule = Object.hasOwn(rules, name) ? rules[name] : undefined
		if (rule === undefined)
			throw new InvalidRequestError(
				`Unknown query parameter "${name.slice(0, 40)}"; accepted: ${Object.keys(rules).join(', ')}.`,
			)
		if (seen.has(name)) throw new InvalidRequestError(`The query parameter ${name} is given more than once.`)
		seen.add(name)
		if (!rule.pattern.test(value)) throw new InvalidRequestError(rule.message)
	}
}

/** A whole number without sign, leading zeros, exponent or spaces: the only form numeric parameters take. */
export const DIGITS = /^[1-9][0-9]{0,15}$/
