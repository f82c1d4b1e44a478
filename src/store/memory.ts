import type { Clock } from '../clock'
import { createFixedWindows } from './rate-limit'
import {
	type CreateResult,
	POSITION_PATTERN,
	positionOf,
	type TakeResult,
	type TokenInfo,
	type TokenPolicy,
	type TokenStore,
} from './types'

interface MemoryRecord {
	readonly filename: string
	readonly issuedAtS: number
	readonly expiresAtS: number
	/** When the record goes (`expiresAtS` plus the grace). */
	readonly dropAtS: number
	readonly maxUses: number | null
	readonly policy: TokenPolicy
	bytesLeft: number | null
	allowanceLeft: number
	revoked: boolean
	/** When the first body started (seconds), once one did. */
	firstBodyS: number | null
	/** Reserved bytes per reservation in flight; `cancelled` once cancelled. */
	readonly reservations: Map<string, number | 'cancelled'>
}

/** Seconds a full store asks a client to wait before it tries for a download slot again (as Redis's). */
const TOO_MANY_DOWNLOADS_RETRY_S = 5

const inFlight = (r: MemoryRecord) => [...r.reservations.values()].filter((v) => v !== 'cancelled').length
/** Live: unexpired, unrevoked, not used up (a spent budget with a body in flight may still come back). */
const isLive = (r: MemoryRecord, nowS: number) =>
	!r.revoked && r.expiresAtS > nowS && !(r.bytesLeft === 0 && inFlight(r) === 0)

/**
 * The embedded development store: the same contract as Redis within one
 * process (no sharing between workers, no lifecycle events). Expiry follows
 * the injected clock; a sweep drops expired records so memory stays bounded by live tokens.
 */
export function createMemoryTokenStore(opts: { clock: Clock; sweepIntervalMs?: number }): TokenStore {
	const { clock } = opts
	const users = new Map<string, Map<string, MemoryRecord>>()
	const slots = new Map<string, Map<string, number>>()
	const issueWindows = createFixedWindows(clock)
	const nowS = () => Math.floor(clock() / 1000)

	function found(userId: string, jti: string): MemoryRecord | undefined {
		const record = users.get(userId)?.get(jti)
		if (record && record.dropAtS <= nowS()) {
			dropExpired(userId)
			return undefined
		}
		return record
	}

	function dropExpired(userId: string): Map<string, MemoryRecord> | undefined {
		const tokens = users.get(userId)
		if (!tokens) return undefined
		const now = nowS()
		for (const [jti, record] of tokens) if (record.dropAtS <= now) tokens.delete(jti)
		if (tokens.size === 0) users.delete(userId)
		return tokens.size === 0 ? undefined : tokens
	}

	/** The user's slots still held at `nowMs` (lapsed ones dropped). */
	function slotsOf(userId: string, nowMs: number): Map<string, number> {
		const held = slots.get(userId) ?? new Map<string, number>()
		for (const [id, until] of held) if (until <= nowMs) held.delete(id)
		if (held.size === 0) slots.delete(userId)
		else slots.set(userId, held)
		return held
	}

	const sweep = setInterval(() => {
		for (const userId of [...users.keys()]) dropExpired(userId)
		for (const userId of [...slots.keys()]) slotsOf(userId, clock())
		issueWindows.sweep()
	}, opts.sweepIntervalMs ?? 60_000)
	sweep.unref()

	return {
		async create(r, options): Promise<CreateResult> {
			const issue = options.issueLimit ? issueWindows.hit(r.userId, options.issueLimit) : null
			if (issue && !issue.allowed) return { status: 'rate_limited', retryAfterS: issue.retryAfterS }
			const tokens = dropExpired(r.userId) ?? new Map<string, MemoryRecord>()
			const now = nowS()
			let live = 0
			for (const record of tokens.values()) if (isLive(record, now)) live++
			if (live >= options.maxLive) return { status: 'too_many_live' }
			users.set(r.userId, tokens)
			tokens.set(r.jti, {
				filename: r.filename,
				issuedAtS: r.issuedAtS,
				expiresAtS: r.expiresAtS,
				dropAtS: r.expiresAtS + r.graceS,
				maxUses: r.maxUses,
				policy: r.policy,
				bytesLeft: r.budgetBytes,
				allowanceLeft: r.budgetBytes === null ? 0 : r.allowanceBytes,
				revoked: false,
				firstBodyS: null,
				reservations: new Map(),
			})
			return { status: 'created' }
		},

		async take(userId, jti, bytes, options = {}): Promise<TakeResult> {
			const record = found(userId, jti)
			if (!record) return { status: 'missing' }
			if (options.filename !== undefined && record.filename !== options.filename) return { status: 'mismatch' }
			if (record.revoked) return { status: 'revoked' }
			if (options.expiredAtS !== undefined && !(record.firstBodyS !== null && record.firstBodyS < options.expiredAtS))
				return { status: 'expired' }
			const nowMs = clock()
			const lease = bytes > 0 ? options.lease : undefined
			const slotFree = () => lease === undefined || slotsOf(userId, nowMs).size < lease.limit
			const admit = () => {
				if (bytes === 0) return
				if (lease !== undefined) slots.set(userId, slotsOf(userId, nowMs).set(lease.id, nowMs + lease.ttlMs))
				if (options.markStart && record.firstBodyS === null) record.firstBodyS = Math.floor(nowMs / 1000)
			}
			if (record.bytesLeft === null) {
				if (!slotFree()) return { status: 'too_many_downloads', retryAfterS: TOO_MANY_DOWNLOADS_RETRY_S }
				admit()
				return { status: 'ok', budgeted: false }
			}
			if (bytes === 0) return { status: 'ok', budgeted: true, bytesLeft: record.bytesLeft }
			const prior = options.reservation === undefined ? undefined : record.reservations.get(options.reservation)
			if (prior === 'cancelled') return { status: 'cancelled' }
			if (prior !== undefined) return { status: 'ok', budgeted: true, bytesLeft: record.bytesLeft }
			if (bytes > record.bytesLeft) return { status: 'used_up', bytesLeft: record.bytesLeft }
			if (!slotFree()) return { status: 'too_many_downloads', retryAfterS: TOO_MANY_DOWNLOADS_RETRY_S }
			admit()
			record.bytesLeft -= bytes
			if (options.reservation !== undefined) record.reservations.set(options.reservation, bytes)
			return { status: 'ok', budgeted: true, bytesLeft: record.bytesLeft }
		},

		async settle(userId, jti, reservation, written, broken) {
			const record = found(userId, jti)
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
			const record = found(userId, jti)
			if (!record) return
			const reserved = record.reservations.get(reservation)
			record.reservations.set(reservation, 'cancelled')
			if (typeof reserved === 'number' && record.bytesLeft !== null) record.bytesLeft += reserved
		},

		async release(userId, leaseIds) {
			const held = slots.get(userId)
			for (const id of leaseIds) held?.delete(id)
		},

		async renew(userId, leaseIds, ttlMs) {
			const held = slotsOf(userId, clock())
			for (const id of leaseIds) if (held.has(id)) held.set(id, clock() + ttlMs)
		},

		async revoke(userId, jti) {
			const record = found(userId, jti)
			if (!record) return false
			record.revoked = true
			return true
		},

		async revokeAll(userId, filename) {
			let revoked = 0
			const now = nowS()
			for (const record of dropExpired(userId)?.values() ?? []) {
				if (!isLive(record, now) || (filename !== undefined && record.filename !== filename)) continue
				record.revoked = true
				revoked++
			}
			return revoked
		},

		async list(userId, page) {
			if (page.after !== undefined && !POSITION_PATTERN.test(page.after)) throw new Error('not a listing position')
			const now = nowS()
			const after = page.after
			const positioned = [...(dropExpired(userId) ?? [])]
				.map(([jti, r]) => ({ jti, r, position: positionOf(r.issuedAtS, jti) }))
				.filter(({ r, position }) => isLive(r, now) && r.bytesLeft !== 0 && (after === undefined || position < after))
				.sort((a, b) => (a.position < b.position ? 1 : a.position > b.position ? -1 : 0))
			// Whether another page follows is known now: the last page, even a full one, says so.
			const more = positioned.length > page.limit
			positioned.length = Math.min(positioned.length, page.limit)
			const tokens: TokenInfo[] = positioned.map(({ jti, r }) => ({
				jti,
				filename: r.filename,
				issuedAtS: r.issuedAtS,
				expiresAtS: r.expiresAtS,
				maxUses: r.maxUses,
				bytesLeft: r.bytesLeft,
				policy: r.policy,
			}))
			const last = positioned.at(-1)
			return { tokens, next: more && last ? last.position : null }
		},

		peek(userId, jti, filename) {
			const record = users.get(userId)?.get(jti)
			return (
				record !== undefined &&
				record.expiresAtS > nowS() &&
				!record.revoked &&
				record.bytesLeft === null &&
				record.filename === filename &&
				// A token issued with an expiry grace must have its first body recorded by a take (as
				// Redis's cache remembers only such tokens): answering its first body from here, after a
				// HEAD made the verdict known, would leave no start behind and cut the download at exp.
				(record.dropAtS === record.expiresAtS || record.firstBodyS !== null)
			)
		},

		async ping() {},

		async close() {
			clearInterval(sweep)
		},
	}
}
