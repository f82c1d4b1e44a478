/** What an entry costs: the key's and value's bytes plus the map's own overhead. */
export type SizeOf<V> = (key: string, value: V) => number

/** Per-entry overhead of a Map slot and its boxes, estimated (V8/JSC alike). */
export const ENTRY_OVERHEAD_BYTES = 64

/** Approximate bytes of a JS string (two per UTF-16 unit, as engines may store it). */
export const stringBytes = (s: string): number => s.length * 2

interface Entry<V> {
	readonly value: V
	readonly bytes: number
	/** Read since it was last passed over by eviction (second chance). */
	used: boolean
}

/**
 * A map bounded by bytes, not entries: whatever a caller puts in, it never
 * holds more than `maxBytes` by `sizeOf`'s count, and an entry larger than the
 * whole budget is simply not kept. Every per-process cache of the service is
 * one of these, so anything an anonymous caller can make it remember has a
 * fixed ceiling. Eviction is second-chance (CLOCK), an approximation of
 * least-recently-used whose reads only set a flag: a hit costs one lookup,
 * which matters on the download path.
 */
export class BoundedCache<V> {
	readonly #entries = new Map<string, Entry<V>>()
	#bytes = 0

	constructor(
		readonly maxBytes: number,
		private readonly sizeOf: SizeOf<V>,
	) {}

	/** The value, marked as used; undefined when absent. */
	get(key: string): V | undefined {
		const entry = this.#entries.get(key)
		if (entry === undefined) return undefined
		entry.used = true
		return entry.value
	}

	/** True when `key` is held; does not change its recency. */
	has(key: string): boolean {
		return this.#entries.has(key)
	}

	/**
	 * Stores `value`, then evicts from the oldest end until the budget holds:
	 * an entry read since it was last passed over moves to the newest end once
	 * instead (its second chance).
	 */
	set(key: string, value: V): void {
		this.delete(key)
		const bytes = this.sizeOf(key, value) + ENTRY_OVERHEAD_BYTES
		if (bytes > this.maxBytes) return
		this.#entries.set(key, { value, bytes, used: false })
		this.#bytes += bytes
		while (this.#bytes > this.maxBytes) {
			const oldest = this.#entries.entries().next().value
			if (oldest === undefined) break
			const [oldestKey, entry] = oldest
			this.#entries.delete(oldestKey)
			// The entry just stored, and any read since its last pass, go round once more.
			if (entry.used || oldestKey === key) {
				entry.used = false
				this.#entries.set(oldestKey, entry)
			} else {
				this.#bytes -= entry.bytes
			}
		}
	}

	/** Forgets `key`; true when it was held. */
	delete(key: string): boolean {
		const entry = this.#entries.get(key)
		if (entry === undefined) return false
		this.#entries.delete(key)
		this.#bytes -= entry.bytes
		return true
	}

	/** Forgets everything. */
	clear(): void {
		this.#entries.clear()
		this.#bytes = 0
	}

	/** How many entries are held. */
	get size(): number {
		return this.#entries.size
	}

	/** The bytes held, by `sizeOf`'s count. */
	get bytes(): number {
		return this.#bytes
	}
}
