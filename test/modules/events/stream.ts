import type { Cluster, Redis } from 'ioredis'
import { waitFor } from '../../support/poll'

// Reading the events stream as an app would (XRANGE), for the tests that go
// through the service: what a request wrote, once it has all been written.

/** One entry of `<prefix>events`, its data parsed. */
export interface StreamEvent {
	readonly streamId: string
	readonly id: string
	readonly type: string
	readonly timestamp: string
	readonly data: Readonly<Record<string, unknown>>
}

/** Every entry of the stream `key`, oldest first ([] when there is none). */
export async function readStream(redis: Redis | Cluster, key: string): Promise<StreamEvent[]> {
	const out: StreamEvent[] = []
	let from = '-'
	for (;;) {
		const page = (await redis.call('XRANGE', key, from, '+', 'COUNT', 1000)) as [string, string[]][]
		for (const [streamId, fields] of page) {
			const named = new Map<string, string>()
			for (let i = 0; i + 1 < fields.length; i += 2) named.set(fields[i] ?? '', fields[i + 1] ?? '')
			out.push({
				streamId,
				id: named.get('id') ?? '',
				type: named.get('type') ?? '',
				timestamp: named.get('timestamp') ?? '',
				data: JSON.parse(named.get('data') ?? 'null') as Record<string, unknown>,
			})
		}
		const last = page.at(-1)
		if (page.length < 1000 || last === undefined) return out
		from = `(${last[0]}`
	}
}

/** The events of one token. */
export const eventsOfToken = (events: readonly StreamEvent[], jti: string): StreamEvent[] =>
	events.filter((e) => e.data.jti === jti)

/** The types of `events`, in order. */
export const typesOf = (events: readonly StreamEvent[]): string[] => events.map((e) => e.type)

/** The events of `type` among `events`. */
export const ofType = (events: readonly StreamEvent[], type: string): StreamEvent[] =>
	events.filter((e) => e.type === type)

/**
 * The events of `jti` once `ready` holds for them, and then `quietMs` more:
 * a body is settled after its last byte went out, so an event that should not
 * be there has had its chance to appear. Throws when `ready` never holds.
 */
export async function tokenEventsWhen(
	redis: Redis | Cluster,
	key: string,
	jti: string,
	ready: (events: StreamEvent[]) => boolean,
	options: { timeoutMs?: number; quietMs?: number } = {},
): Promise<StreamEvent[]> {
	await waitFor(`events of ${jti}`, options.timeoutMs ?? 5000, async () => {
		const events = eventsOfToken(await readStream(redis, key), jti)
		return ready(events) ? events : `so far: ${typesOf(events).join(', ')}`
	})
	await Bun.sleep(options.quietMs ?? 250)
	return eventsOfToken(await readStream(redis, key), jti)
}

/** `ready` for `tokenEventsWhen`: at least `n` events of `type`. */
export const atLeast =
	(n: number, type: string) =>
	(events: readonly StreamEvent[]): boolean =>
		ofType(events, type).length >= n
