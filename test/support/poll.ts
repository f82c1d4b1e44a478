// The one polling loop of the suite: every wait for something to happen is
// bounded, probes at a fixed interval, and either hands the last value back for
// the test to assert (pollUntil) or throws saying what it waited for (waitFor).

/**
 * Probes every `everyMs` until `done(value)` or `timeoutMs` has passed, and
 * returns the last value (the caller asserts it). An error thrown by `probe`
 * ends the wait and propagates.
 */
export async function pollUntil<T>(
	probe: () => T | Promise<T>,
	done: (value: T) => boolean,
	timeoutMs: number,
	everyMs = 50,
): Promise<T> {
	const until = performance.now() + timeoutMs
	let value = await probe()
	while (!done(value) && performance.now() < until) {
		await Bun.sleep(everyMs)
		value = await probe()
	}
	return value
}

/**
 * `pollUntil` for fixtures: `probe` returns the value it waits for, or a string
 * saying why not yet (an error it throws counts as such a reason). Throws after
 * `timeoutMs` with `what` and the last reason.
 */
export async function waitFor<T>(
	what: string,
	timeoutMs: number,
	probe: () => Promise<T | string>,
	everyMs = 50,
): Promise<T> {
	let last = 'never probed'
	const reached = await pollUntil(
		async (): Promise<{ value: T } | null> => {
			try {
				const value = await probe()
				if (typeof value !== 'string') return { value }
				last = value
			} catch (err) {
				last = err instanceof Error ? err.message : String(err)
			}
			return null
		},
		(result) => result !== null,
		timeoutMs,
		everyMs,
	)
	if (reached === null) throw new Error(`${what}: not reached within ${timeoutMs} ms (last: ${last})`)
	return reached.value
}
