import type { NewTokenRecord, TokenStore } from '../../../src/store/types'
import { createIn } from '../../store/contract'

/** What seeding took: the records written, in the order `make` built them, and the wall time. */
export interface Seeded {
	readonly records: readonly NewTokenRecord[]
	readonly ms: number
}

/**
 * Writes `count` tokens through the store's own `create` (so the record and both
 * listing indexes are exactly the store's layout, events included), `inFlight`
 * at a time. Throws when one is refused.
 */
export async function seedTokens(
	store: TokenStore,
	count: number,
	make: (i: number) => NewTokenRecord,
	inFlight = 500,
): Promise<Seeded> {
	const started = performance.now()
	const records = Array.from({ length: count }, (_, i) => make(i))
	for (let from = 0; from < count; from += inFlight) {
		const batch = records.slice(from, from + inFlight)
		const answers = await Promise.all(batch.map((r) => createIn(store, r)))
		const refused = answers.find((a) => a.status !== 'created')
		if (refused) throw new Error(`seeding refused: ${JSON.stringify(refused)}`)
	}
	return { records, ms: Math.round(performance.now() - started) }
}

/** Tokens newest first, as the listing orders them: by issue time, then by id (both descending). */
export const newestFirst = (records: readonly NewTokenRecord[]): NewTokenRecord[] =>
	[...records].sort((a, b) =>
		a.issuedAtS !== b.issuedAtS ? b.issuedAtS - a.issuedAtS : a.jti < b.jti ? 1 : a.jti > b.jti ? -1 : 0,
	)
