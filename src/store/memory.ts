import type { Clock } from '../clock'
import { createFixedWindows } from './rate-limit'
import type { CreateResult, NewTokenRecord, TakeResult, TokenInfo, TokenStore } from './types'

interface MemoryRecord {
	readonly filename: string
	readonly issuedAtS: number
	readonly expiresAtS: number
	readonly maxUses: number | null
	bytesLeft: number | null
	allowanceLeft: number
	revoked: boolean
	/** Reserved bytes per reservation in flight; `cancelled` once cancelled. */
	readonly reservations: Map<string, number | 'cancelled'>
}

/**
 * The embedded development store: the same contract as Redis within one
 * process (no sharing between workers). Expiry follows the injected clock; a
 * sweep drops expired records so memory stays bounded by live tokens.
 */
export function createMemoryTokenStore(opts: { clock: Clock; sweepIntervalMs?: number }): TokenStore {
	const { clock } = opts
	const users = new Map<string, Map<string, MemoryRecord>>()
	const issueWindows = createFixedWindows(clock)
	const nowS = () => Math.floor(clock() / 1000)

	function live(userId: string, jti: string): MemoryRecord | undefined {
		const record = users.get(userId)?.get(jti)
		if (record && record.expiresAtS <= nowS()) {
			dropExpired(userId)
			return undefined
		}
		return record
	}

	function dropExpired(userId: string): Map<string, MemoryRecord> | undefined {
		const tokens = users.get(userId)
		if (!tokens) return undefined
		const now = nowS()
		for (const [jti, record] of tokens) if (record.expiresAtS <= now) tokens.delete(jti)
		if (tokens.size === 0) users.delete(userId)
		return tokens.size === 0 ? undefined : tokens
	}

	const sweep = setInterval(() => {
		for (const userId of [...users.keys()]) dropExpired(userId)
		issueWindows.sweep()
	}, opts.sweepIntervalMs ?? 60_000)
	sweep.unref()

	return {
		async create(r: NewTokenRecord, limit): Promise<CreateResult> {
			const issue = limit ? issueWindows.hit(r.userId, limit) : null
			if (issue && !issue.allowed) return { status: 'rate_limited', retryAfterS: issue.retryAfterS }
			const tokens = dropExpired(r.userId) ?? new Map<string, MemoryRecord>()
			users.set(r.userId, tokens)
			tokens.set(r.jti, {
				filename: r.filename,
				issuedAtS: r.issuedAtS,
				expiresAtS: r.expiresAtS,
				maxUses: r.maxUses,
				bytesLeft: r.budgetBytes,
				allowanceLeft: r.budgetBytes === null ? 0 : r.allowanceBytes,
				revoked: false,
				reservations: new Map(),
			})
			return { status: 'created' }
		},

		async take(userId, jti, bytes, options = {}): Promise<TakeResult> {
			const record = live(userId, jti)
			if (!record) return { status: 'missing' }
			if (options.filename !== undefined && record.filename !== options.filename) return { status: 'mismatch' }
			if (record.revoked) return { status: 'revoked' }
			if (record.bytesLeft === null) return { status: 'ok', budgeted: false }
			if (bytes === 0) return { status: 'ok', budgeted: true, bytesLeft: record.bytesLeft }
			const prior = options.reservation === undefined ? undefined : record.reservations.get(options.reservation)
			if (prior === 'cancelled') return { status: 'cancelled' }
			if (prior !== undefined) return { status: 'ok', budgeted: true, bytesLeft: record.bytesLeft }
			if (bytes > record.bytesLeft) return { status: 'used_up', bytesLeft: record.bytesLeft }
			record.bytesLeft -= bytes
			if (options.reservation !== undefined) record.reservations.set(options.reservation, bytes)
			return { status: 'ok', budgeted: true, bytesLeft: record.bytesLeft }
		},

		async settle(userId, jti, reservation, written, broken) {
			const record = live(userId, jti)
			const reserved = record?.reservations.get(reservation)
			if (!record || record.bytesLeft === null || reserved === undefined || reserved === 'cancelled') return 0
			record.reservations.delete(reservation)
			if (!broken) return 0
			const sent = Math.min(Math.max(0, written), reserved)
			const extra = Math.min(sent, record.allowanceLeft)
			record.allowanceLeft -= extra
			record.bytesLeft += reserved - sent + extra
			return reserved - sent + extra
		},

		async cancel(userId, jti, reservation) {
			const record = live(userId, jti)
			if (!record) return
			const reserved = record.reservations.get(reservation)
			record.reservations.set(reservation, 'cancelled')
			if (typeof reserved === 'number' && record.bytesLeft !== null) record.bytesLeft += reserved
		},

		async revoke(userId, jti) {
			const record = live(userId, jti)
			if (!record) return false
			record.revoked = true
			return true
		},

		async revokeAll(userId, filename) {
			let revoked = 0
			for (const record of dropExpired(userId)?.values() ?? []) {
				if (record.revoked || (filename !== undefined && record.filename !== filename)) continue
				record.revoked = true
				revoked++
			}
			return revoked
		},

		async list(userId) {
			const out: TokenInfo[] = []
			for (const [jti, r] of dropExpired(userId) ?? []) {
				// Revoked and used-up tokens are not live.
				if (r.revoked || r.bytesLeft === 0) continue
				out.push({
					jti,
					filename: r.filename,
					issuedAtS: r.issuedAtS,
					expiresAtS: r.expiresAtS,
					maxUses: r.maxUses,
					bytesLeft: r.bytesLeft,
				})
			}
			return out
		},

		peek(userId, jti, filename) {
			const record = users.get(userId)?.get(jti)
			return (
				record !== undefined &&
				record.expiresAtS > nowS() &&
				!record.revoked &&
				record.bytesLeft === null &&
				record.filename === filename
			)
		},

		async ping() {},

		async close() {
			clearInterval(sweep)
		},
	}
}
