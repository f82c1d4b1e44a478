/** What an entry costs: the key's and value's bytes plus the map's own overhead. */
export type SizeOf<V> = (key: string, value: V) => number

/** Per-entry overhead of a Map slot and its boxes, estimated (V8/JSC alike). */
export const ENTRY_OVERHEAD_BYTES = 64

/** Approximate bytes of a JS string (two per UTF-16 unit, as engines may store it). */
export const stringBytes = (s: string): number => s.length * 2

/**
 * A least-recently-used map bounded by bytes, not entries: whatever a caller
 * puts in, it never holds more than `maxBytes` by `sizeOf`'s count, and an
 * entry larger than the whole budget is simply not kept. Every per-process
 * cache of the service is one of these, so anything an anonymous caller can
 * make it remember has a fixed ceiling.
 */
export class BoundedCache<V> {
	readonly #entries = new Map<string, { value: V; bytes: number }>()
	#bytes = 0

	constructor(
		readonly maxBytes: number,
		private readonly sizeOf: SizeOf<V>,
	) {}

	/** The value, marking it most recently used; undefined when absent. */
	get(key: string): V | undefined {
		const entry = this.#entries.get(key)
		if (entry === undefined) return undefined
		// Re-inserting moves it to the end of the Map's order: the newest.
		this.#entries.delete(key)
		this.#entries.set(key, entry)
		return entry.value
	}

	/** True when `key` is held; does not change its recency. */
	has(key: string): boolean {
		return this.#entries.has(key)
	}

	/** Stores `value`, evicting the least recently used entries until the budget holds. */
	set(key: string, value: V): void {
		this.delete(key)
		const bytes = this.sizeOf(key, value) + ENTRY_OVERHEAD_BYTES
		if (bytes > this.maxBytes) return
		this.#entries.set(key, { value, bytes })
		this.#bytes += bytes
		for (const [oldest, entry] of this.#entries) {
			if (this.#bytes <= this.maxBytes) break
			this.#entries.delete(oldest)
			this.#bytes -= entry.bytes
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
