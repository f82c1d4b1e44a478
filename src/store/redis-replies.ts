import { StoreUnavailableError } from '../errors'
import { toInt } from './scripts'
import type { CreateResult, TakeResult, TokenInfo, TokenStore } from './types'

/** The one answer of every unlimited token's admitted take; the store compares against it by identity. */
export const UNLIMITED: TakeResult = Object.freeze({ status: 'ok', budgeted: false })

/**
 * When a user holds every download slot, how long to wait before asking
 * again: the service cannot know when a body will end, and a few seconds
 * keeps a polling client cheap.
 */
const TOO_MANY_DOWNLOADS_RETRY_S = 5

/** A script's reply `{status, {values}, {events}}`; RESP2 and RESP3 alike send bulk strings and integers. */
export interface Reply {
	readonly status: string
	readonly values: readonly unknown[]
	readonly events: readonly unknown[]
}

/** Reads a script's reply; throws `StoreUnavailableError` for a shape no script of this code answers. */
export function replyOf(reply: unknown, script: string): Reply {
	const [status, values, events] = Array.isArray(reply) ? (reply as unknown[]) : []
	if (typeof status !== 'string' && !(status instanceof Buffer))
		throw new StoreUnavailableError(new Error(`unexpected ${script} reply ${String(reply)}`))
	return {
		status: String(status),
		values: Array.isArray(values) ? values : [],
		events: Array.isArray(events) ? events : [],
	}
}

const unexpected = (script: string, status: string) =>
	new StoreUnavailableError(new Error(`unexpected ${script} status ${status}`))

/** TAKE's reply as a TakeResult; throws `StoreUnavailableError` for a status this code does not know. */
export function takeResult({ status, values }: Reply): TakeResult {
	switch (status) {
		case 'ok_unlimited':
			return UNLIMITED
		case 'ok':
			return { status: 'ok', budgeted: true, bytesLeft: toInt(values[0]) }
		case 'used_up':
			return { status: 'used_up', bytesLeft: toInt(values[0]) }
		case 'too_many_downloads':
			return { status, retryAfterS: TOO_MANY_DOWNLOADS_RETRY_S }
		case 'missing':
		case 'revoked':
		case 'mismatch':
		case 'expired':
		case 'cancelled':
			return { status }
		default:
			throw unexpected('take', status)
	}
}

/** CREATE's reply as a CreateResult; throws `StoreUnavailableError` for a status this code does not know. */
export function createResult({ status, values }: Reply): CreateResult {
	switch (status) {
		case 'created':
		case 'too_many_live':
			return { status }
		case 'rate_limited':
			return { status: 'rate_limited', retryAfterS: Math.ceil(toInt(values[0]) / 1000) }
		default:
			throw unexpected('create', status)
	}
}

/** The record fields a listing reads, in the order `tokenInfoOf` expects them. */
export const LISTED_FIELDS = ['f', 'i', 'e', 'm', 'b', 'r', 'n', 'p', 'q'] as const

/** One listed record (`LISTED_FIELDS`) as a live token, or null when it is revoked, expired, used up or gone. */
export function tokenInfoOf(jti: string, fields: readonly (string | null)[], nowS: number): TokenInfo | null {
	const [f, i, e, m, b, r, nbf, cidr, rate] = fields
	if (f == null || e == null || r != null || Number(e) <= nowS || b === '0') return null
	return {
		jti,
		filename: f,
		issuedAtS: Number(i),
		expiresAtS: Number(e),
		maxUses: m == null ? null : Number(m),
		bytesLeft: b == null ? null : Number(b),
		policy: {
			...(nbf != null ? { nbf: Number(nbf) } : {}),
			...(cidr != null ? { cidr: JSON.parse(cidr) as string[] } : {}),
			...(rate != null ? { rate: Number(rate) } : {}),
		},
	}
}

/** A JSON member list (`,"k":v…`) of the policy and limits `token.issued` carries. */
export function issuedFields(r: Parameters<TokenStore['create']>[0], iso: (s: number) => string): string {
	return `,${JSON.stringify({
		expires_at: iso(r.expiresAtS),
		max_uses: r.maxUses,
		size: r.sizeBytes,
		not_before: r.policy.nbf === undefined ? null : iso(r.policy.nbf),
		ip: r.policy.cidr ?? null,
		rate: r.policy.rate ?? null,
	}).slice(1, -1)}`
}
