import type { Clock } from '../clock'
import type { NewTokenRecord, TakeResult, TokenInfo, TokenStore } from './types'

interface MemoryRecord {
	readonly filename: string
	readonly issuedAtS: number
	readonly expiresAtS: number
	readonly maxUses: number | null
	bytesLeft: number | null
	allowanceLeft: number
	revoked: boolean
}

/**
 * The embedded development store: the same contract as Redis within one
 * process (no sharing between workers). Expiry follows the injected clock; a
 * sweep drops expired records so memory stays bounded by live tokens.
 */
export function createMemoryTokenStore(opts: { clock: Clock; sweepIntervalMs?: number }): TokenStore {
	const { clock } = opts
	const users = new Map<string, Map<string, MemoryRecord>>()
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
	}, opts.sweepIntervalMs ?? 60_000)
	sweep.unref()

	return {
		async create(r: NewTokenRecord) {
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
			})
		},

		async take(userId, jti, bytes): Promise<TakeResult> {
			const record = live(userId, jti)
			if (!record) return { status: 'missing' }
			if (record.revoked) return { status: 'revoked' }
			if (record.bytesLeft === null) return { status: 'ok', budgeted: false }
			if (bytes > record.bytesLeft) return { status: 'used_up', bytesLeft: record.bytesLeft }
			record.bytesLeft -= bytes
			return { status: 'ok', budgeted: true, bytesLeft: record.bytesLeft }
		},

		async giveBack(userId, jti, unwritten, written) {
			const record = live(userId, jti)
			if (!record || record.bytesLeft === null) return
			const back = Math.min(Math.max(0, written), record.allowanceLeft)
			record.allowanceLeft -= back
			record.bytesLeft += Math.max(0, unwritten) + back
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
				if (r.revoked) continue
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

		async ping() {},

		async close() {
			clearInterval(sweep)
		},
	}
}
