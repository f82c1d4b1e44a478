import { InvalidRequestError } from '../../errors'
import { parseRanges } from '../../http/cidr'

// The optional policy of a token (docs/contract.md §3.1): from when it works,
// from where, and how fast. Each is signed into the token as a claim, so a
// client cannot widen it without breaking the signature.

/** The slowest pace a token may ask for, in bytes per second (a pace below it would hold connections for hours). */
export const MIN_RATE = 65_536
/** The fastest, far beyond any link, so a typo of a few digits is still refused. */
export const MAX_RATE = 10_000_000_000

/** `not_before`: epoch seconds, or an RFC 3339 date-time with a zone. */
export const NOT_BEFORE_PATTERN =
	/^(?:0|[1-9][0-9]{0,11}|\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:[Zz]|[+-]\d\d:\d\d))$/
/** `ip`: what a list of addresses and CIDR ranges can be made of (the ranges are then parsed). */
export const IP_PATTERN = /^[0-9A-Fa-f.:/, ]{1,1024}$/

export const NOT_BEFORE_ERROR =
	'not_before must be epoch seconds or an RFC 3339 date-time with a zone (e.g. 2026-12-24T18:00:00Z), before the expiry'
export const IP_ERROR = 'ip must be up to 8 IPv4/IPv6 addresses or CIDR ranges, comma-separated'
export const RATE_ERROR = `rate must be a whole number of bytes per second from ${MIN_RATE} to ${MAX_RATE}`

/** The policy a token request asked for, as written (the route checked the spelling). */
export interface PolicyRequest {
	readonly notBefore?: string | undefined
	readonly ip?: string | undefined
	readonly rate?: number | undefined
}

/** The policy claims of a token, only those asked for. */
export interface PolicyClaims {
	readonly nbf?: number
	readonly cidr?: readonly string[]
	readonly rate?: number
}

/** Epoch seconds of `not_before`, rounded up (a fraction of a second early is still early), or null when not a time. */
function epochSeconds(text: string): number | null {
	if (/^[0-9]+$/.test(text)) return Number(text)
	// Date.parse takes RFC 3339's shape but rolls impossible dates over (Feb 30 → Mar 2): refuse those.
	const ms = Date.parse(text.toUpperCase())
	if (!Number.isFinite(ms)) return null
	const [date] = text.split(/[Tt]/)
	const local = new Date(ms + zoneOffsetMs(text))
	if (local.toISOString().slice(0, 10) !== date) return null
	return Math.ceil(ms / 1000)
}

/** The zone offset of an RFC 3339 time in milliseconds (east positive). */
function zoneOffsetMs(text: string): number {
	const zone = /([+-])(\d\d):(\d\d)$/.exec(text)
	if (!zone) return 0
	const minutes = Number(zone[2]) * 60 + Number(zone[3])
	return (zone[1] === '-' ? -1 : 1) * minutes * 60_000
}

/**
 * Checks the policy against the token's expiry and turns it into claims.
 * Throws `InvalidRequestError` naming the parameter: a time that is not one
 * or not before `expS`, a bad address or prefix length, more than 8 ranges,
 * a rate out of range.
 */
export function policyClaims(request: PolicyRequest, expS: number): PolicyClaims {
	const claims: { nbf?: number; cidr?: string[]; rate?: number } = {}
	if (request.notBefore !== undefined) {
		const nbf = epochSeconds(request.notBefore)
		if (nbf === null) throw new InvalidRequestError(NOT_BEFORE_ERROR)
		if (nbf >= expS)
			throw new InvalidRequestError(
				`not_before must lie before the token expires (${new Date(expS * 1000).toISOString().replace('.000Z', 'Z')})`,
			)
		claims.nbf = nbf
	}
	if (request.ip !== undefined) {
		const parsed = parseRanges(request.ip)
		if ('problem' in parsed) throw new InvalidRequestError(parsed.problem)
		claims.cidr = parsed.ranges
	}
	if (request.rate !== undefined) {
		if (!Number.isSafeInteger(request.rate) || request.rate < MIN_RATE || request.rate > MAX_RATE)
			throw new InvalidRequestError(RATE_ERROR)
		claims.rate = request.rate
	}
	return claims
}
