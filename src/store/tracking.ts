import type { Redis } from 'ioredis'
import { BoundedCache, stringBytes } from '../bounded-cache'
import { errorFields, type Logger } from '../log'

/**
 * A per-process copy of token state that Redis itself keeps coherent
 * (server-assisted client-side caching): every key this process reads is
 * tracked by Redis, which pushes an invalidation when any client changes it,
 * and the entry is dropped. Nothing is trusted while the tracking or the
 * invalidation connection is down: both dropping flushes everything.
 */
export interface TrackedCache {
	/** The value remembered for `key`, when the cache is trusted right now. */
	lookup(key: string): string | undefined
	/**
	 * Call just before sending a read that may fill the cache: a ticket that
	 * `fill` checks, or null when the cache is not trusted.
	 */
	ticket(): number | null
	/**
	 * Remembers `value` for `key`, read with `ticket`, unless anything was
	 * invalidated or a connection dropped since (the reply may then be stale).
	 */
	fill(key: string, value: string, ticket: number | null): void
	/** Forgets `key` at once (this process changed it). */
	forget(key: string): void
	/** Whether entries are trusted right now. */
	readonly trusted: boolean
	/** Stops tracking and closes the invalidation connection. */
	close(): Promise<void>
}

const INVALIDATE_CHANNEL = '__redis__:invalidate'

/**
 * Tracking in REDIRECT mode: the data connection (`client`, which the store
 * uses for its reads) sends its invalidations to a second connection
 * subscribed to `__redis__:invalidate` (ioredis 6 drops RESP3 invalidation
 * pushes, so they cannot come on the data connection itself). A read racing an
 * invalidation is not cached: `fill` refuses once anything was invalidated
 * after its `ticket`.
 */
export function createTrackedCache(client: Redis, log: Logger, maxBytes: number): TrackedCache {
	const entries = new BoundedCache<string>(maxBytes, (key, value) => stringBytes(key) + stringBytes(value))
	// Bumped on every invalidation, flush, disconnect and re-enable: a ticket older than it is void.
	let generation = 0
	let trusted = false
	let closed = false
	let subscriberId: number | null = null

	const distrust = (why: string) => {
		generation++
		if (trusted) log.info('token cache flushed', { why })
		trusted = false
		entries.clear()
	}

	// Subscribed anew on every connect (by the ready handler), after CLIENT ID names the connection.
	const subscriber = client.duplicate({ lazyConnect: true, autoResubscribe: false })

	async function enable() {
		const id = subscriberId
		if (closed || id === null || client.status !== 'ready') return
		const at = ++generation
		try {
			// OFF first: ON with a new REDIRECT is refused while tracking is on.
			await client.call('CLIENT', 'TRACKING', 'OFF')
			await client.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(id))
		} catch (err) {
			log.warn('client-side caching unavailable; asking Redis every time', errorFields(err))
			return
		}
		// Trusted only if nothing dropped while it was being switched on.
		if (at === generation && subscriberId === id && client.status === 'ready') {
			entries.clear()
			trusted = true
		}
	}

	subscriber.on('messageBuffer', (_channel: Buffer, message: Buffer | Buffer[] | null) => {
		generation++
		// A null message means the whole keyspace changed (FLUSHALL, FLUSHDB).
		if (message === null) return entries.clear()
		for (const key of Array.isArray(message) ? message : [message]) entries.delete(key.toString())
	})
	subscriber.on('ready', () => {
		void (async () => {
			try {
				const id = Number(await subscriber.call('CLIENT', 'ID'))
				await subscriber.subscribe(INVALIDATE_CHANNEL)
				subscriberId = id
				await enable()
			} catch (err) {
				log.warn('cannot subscribe to invalidations; asking Redis every time', errorFields(err))
			}
		})()
	})
	subscriber.on('close', () => {
		subscriberId = null
		distrust('invalidation connection closed')
	})
	subscriber.on('error', (err: unknown) => log.debug('invalidation connection error', errorFields(err)))
	const onClientClose = () => distrust('data connection closed')
	const onClientReady = () => void enable()
	client.on('close', onClientClose)
	client.on('ready', onClientReady)
	subscriber.connect().catch((err: unknown) => log.warn('cannot open the invalidation connection', errorFields(err)))

	return {
		lookup: (key) => (trusted ? entries.get(key) : undefined),
		ticket: () => (trusted ? generation : null),
		fill(key, value, ticket) {
			if (trusted && ticket === generation) entries.set(key, value)
		},
		forget(key) {
			entries.delete(key)
		},
		get trusted() {
			return trusted
		},
		async close() {
			closed = true
			distrust('closing')
			client.off('close', onClientClose)
			client.off('ready', onClientReady)
			subscriber.disconnect()
		},
	}
}
