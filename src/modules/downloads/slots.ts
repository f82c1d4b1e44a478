import type { Logger } from '../../log'
import { errorFields } from '../../log'
import type { LeaseRequest, TokenStore } from '../../store/types'

/** A slot lapses this long after its last renewal: an instance that dies frees its slots within it. */
export const SLOT_TTL_MS = 30_000
/** Slots of bodies still in flight are renewed this often (three renewals fit in one TTL). */
const RENEW_EVERY_MS = 10_000

/**
 * The download slots this process holds (`MAX_CONCURRENT_DOWNLOADS_PER_USER`):
 * a fresh lease per body, renewed while the body runs, released when it ends.
 */
export interface SlotKeeper {
	/** A lease request for a new body of `limit` per user. */
	lease(limit: number): LeaseRequest
	/** The lease was granted for `userId`'s body: keep it alive until `release`. */
	hold(userId: string, id: string): void
	/** The body ended (or never started): frees the slot at once. Never rejects. */
	release(userId: string, id: string): Promise<void>
	/** Slots held now. */
	readonly held: number
	/** Stops renewing (at shutdown; what is held then lapses by itself). */
	stop(): void
}

// Unique per process and per body.
const processTag = crypto.randomUUID().slice(0, 8)
let counter = 0

/** Builds the keeper over the store; renewals of one user travel together. */
export function createSlotKeeper(store: TokenStore, log: Logger, onChange: (held: number) => void): SlotKeeper {
	const byUser = new Map<string, Set<string>>()
	let held = 0
	const timer = setInterval(() => {
		for (const [userId, ids] of byUser)
			void store.renew(userId, [...ids], SLOT_TTL_MS).catch((err: unknown) => {
				// A slot not renewed lapses: the user may then start one more body than allowed, never fewer.
				log.warn('could not renew download slots', { user_id: userId, count: ids.size, ...errorFields(err) })
			})
	}, RENEW_EVERY_MS)
	timer.unref?.()
	return {
		lease: (limit) => ({ id: `${processTag}${(counter++).toString(36)}`, limit, ttlMs: SLOT_TTL_MS }),
		hold(userId, id) {
			const ids = byUser.get(userId) ?? new Set<string>()
			ids.add(id)
			byUser.set(userId, ids)
			onChange(++held)
		},
		async release(userId, id) {
			const ids = byUser.get(userId)
			if (ids?.delete(id)) {
				if (ids.size === 0) byUser.delete(userId)
				onChange(--held)
			}
			await store.release(userId, [id]).catch((err: unknown) => {
				log.warn('could not free a download slot; it lapses by itself', { user_id: userId, ...errorFields(err) })
			})
		},
		get held() {
			return held
		},
		stop() {
			clearInterval(timer)
		},
	}
}
