/** A bound on how much of one kind of work runs at once in this process. */
export interface Gate {
	/** Runs `work` once one of the places is free, and frees it when `work` settles (either way). */
	run<T>(work: () => Promise<T>): Promise<T>
}

/**
 * Builds a gate of `size` places; callers beyond them wait their turn, first
 * come first served. Throws `RangeError` unless `size` is a whole number ≥ 1.
 */
export function createGate(size: number): Gate {
	if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`a gate needs at least one place, got ${size}`)
	let held = 0
	const waiting: (() => void)[] = []
	return {
		async run(work) {
			if (held < size) held++
			else await new Promise<void>((resolve) => waiting.push(resolve))
			try {
				return await work()
			} finally {
				// The place passes straight to the next in line: a newcomer never jumps the queue.
				const next = waiting.shift()
				if (next) next()
				else held--
			}
		},
	}
}
