import type { Redis } from 'ioredis'
import { BoundedCache, stringBytes } from '../bounded-cache'
import { errorFields, type Logger } from '../log'
import { keepConnecting } from './ioredis-workarounds'

/**
 * A per-process copy of token state that Redis itself keeps coherent
 * (server-assisted client-side caching): every key this process reads is
 * tracked by Redis, which pushes an invalidation when any client changes it,
 * and the entry is dropped. Nothing is trusted while the tracking or the
 * invalidation connection is down: both dropping flushes everything.
 */
export interface TrackedCache {
	/**
	 * The connection whose reads are tracked: reads that may fill the cache go
	 * through it, and only they, so keys read for other reasons (rate-limit
	 * windows, the user index) cost no invalidation traffic.
	 */
	readonly client: Redis
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
	/**
	 * Resolves once every instance subscribed to invalidations has handled all
	 * of them sent so far (or after `timeoutMs`): call after a write that must
	 * be refused everywhere from the very next request (a revocation).
	 */
	barrier(timeoutMs: number): Promise<void>
	/** Stops tracking and closes the invalidation connection. */
	close(): Promise<void>
}

const INVALIDATE_CHANNEL = '__redis__:invalidate'
/** How often the invalidation connection is pinged (when no ping is waiting for its answer). */
const HEARTBEAT_EVERY_MS = 250
/** A Redis that does not answer a heartbeat within this long is not trusted (a hung primary keeps its sockets open). */
const HEARTBEAT_TIMEOUT_MS = 1000

/**
 * The longest a remembered verdict may still be used after Redis stops
 * answering: a closed connection flushes the cache as soon as the process
 * sees it close (milliseconds); a hung server keeps its sockets open, and is
 * distrusted when a heartbeat sent at most `HEARTBEAT_EVERY_MS` after it hung
 * goes `HEARTBEAT_TIMEOUT_MS` unanswered. Using a verdict within this window
 * is safe: a revocation is acknowledged to its caller only once every
 * instance confirmed it dropped its copy (the barrier), so any revocation
 * acknowledged before Redis went silent was already applied here; and while
 * Redis is silent nothing can be revoked (the revoke itself fails with 503).
 * This must stay below the time Redis needs to fail over to a new primary.
 */
export const CACHE_TRUST_AFTER_SILENCE_MS = HEARTBEAT_EVERY_MS + HEARTBEAT_TIMEOUT_MS

/**
 * Tracking in REDIRECT mode: the data connection (`client`, which the store
 * uses for its reads) sends its invalidations to a second connection
 * subscribed to `__redis__:invalidate` over RESP2 (ioredis 6 drops RESP3
 * invalidation pushes, so they cannot come as pushes at all). A read racing an
 * invalidation is not cached: `fill` refuses once anything was invalidated
 * after its `ticket`.
 */
export function createTrackedCache(
	client: Redis,
	log: Logger,
	maxBytes: number,
	/** Names the barrier channels; instances sharing a key prefix share them. */
	channelPrefix = 'dlg:',
): TrackedCache {
	// Barriers travel on the same connection as the invalidations, after them:
	// an instance that answers one has already dropped what was invalidated before it.
	const barrierChannel = `${channelPrefix}cache-barrier`
	const ackChannel = `${channelPrefix}cache-ack:${crypto.randomUUID()}`
	// Acks can arrive before PUBLISH answers how many to expect: both are counted.
	const pendingBarriers = new Map<string, { got: number; expected: number | null; done: () => void }>()
	const settleBarrier = (nonce: string) => {
		const pending = pendingBarriers.get(nonce)
		if (pending && pending.expected !== null && pending.got >= pending.expected) pending.done()
	}
	const entries = new BoundedCache<string>(maxBytes, (key, value) => stringBytes(key) + stringBytes(value))
	// Bumped on every invalidation, flush, disconnect and re-enable: a ticket older than it is void.
	let generation = 0
	let trusted = false
	let closed = false
	let subscriberId: number | null = null
	// Set when the server refuses tracking (old Redis, an ACL without CLIENT): no retry until a reconnect.
	let unsupported = false

	const distrust = (why: string) => {
		generation++
		if (trusted) log.info('token cache flushed', { why })
		trusted = false
		entries.clear()
	}

	// Subscribed anew on every connect (by the ready handler), after CLIENT ID names the connection.
	// RESP2: to a RESP3 connection Redis sends invalidations as `invalidate`
	// pushes, which ioredis drops; to RESP2 ones, as messages on the channel.
	const subscriber = client.duplicate({
		lazyConnect: true,
		autoResubscribe: false,
		protocol: 2,
		enableAutoPipelining: false,
	})
	// A duplicate of a Sentinel client is one too, open to the same premature end.
	keepConnecting(subscriber)

	async function enable() {
		const id = subscriberId
		if (closed || id === null || client.status !== 'ready') return
		const at = ++generation
		try {
			// OFF first: ON with a new REDIRECT is refused while tracking is on.
			await client.call('CLIENT', 'TRACKING', 'OFF')
			// NOLOOP: this connection's own writes (budget takes) are not echoed back.
			await client.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(id), 'NOLOOP')
		} catch (err) {
			if (client.status === 'ready') {
				unsupported = true
				log.warn('client-side caching unavailable; asking Redis every time', errorFields(err))
			}
			return
		}
		// Trusted only if nothing dropped while it was being switched on.
		if (at === generation && subscriberId === id && client.status === 'ready') {
			entries.clear()
			trusted = true
		}
	}

	subscriber.on('messageBuffer', (channelBuffer: Buffer, message: Buffer | Buffer[] | null) => {
		const channel = channelBuffer.toString()
		if (channel === barrierChannel) {
			// "<ack channel> <nonce>": everything before it on this connection is handled.
			const [replyTo = '', nonce = ''] = String(message).split(' ')
			client.publish(replyTo, nonce).catch(() => {})
			return
		}
		if (channel === ackChannel) {
			const nonce = String(message)
			const pending = pendingBarriers.get(nonce)
			if (pending) pending.got++
			settleBarrier(nonce)
			return
		}
		// A new epoch: any read sent before this message may predate the change it reports.
		generation++
		// A null message means the whole keyspace changed (FLUSHALL, FLUSHDB).
		if (message === null) return entries.clear()
		for (const key of Array.isArray(message) ? message : [message]) entries.delete(key.toString())
	})
	subscriber.on('ready', () => {
		void (async () => {
			try {
				const id = Number(await subscriber.call('CLIENT', 'ID'))
				await subscriber.subscribe(INVALIDATE_CHANNEL, barrierChannel, ackChannel)
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
	// A hung server (paused VM, partition) closes no socket: while it does not
	// answer, nothing it said is trusted, since a failover may already be taking
	// revocations elsewhere. Once it answers again, tracking is switched on afresh.
	// Each ping arms its own timer, so silence is noticed HEARTBEAT_TIMEOUT_MS
	// after the ping to the millisecond, not at the next tick of the interval.
	let pinging = false
	const heartbeat = setInterval(() => {
		if (closed || pinging || subscriber.status !== 'ready') return
		pinging = true
		const silent = () => {
			if (trusted) distrust('Redis did not answer a heartbeat')
		}
		const silence = setTimeout(silent, HEARTBEAT_TIMEOUT_MS)
		silence.unref?.()
		subscriber.ping().then(
			() => {
				clearTimeout(silence)
				pinging = false
				if (!trusted && !unsupported) void enable()
			},
			() => {
				// Timed out or dropped: no answer either way.
				clearTimeout(silence)
				pinging = false
				silent()
			},
		)
	}, HEARTBEAT_EVERY_MS)
	heartbeat.unref?.()
	const onClientClose = () => distrust('data connection closed')
	const onClientReady = () => {
		unsupported = false
		void enable()
	}
	client.on('close', onClientClose)
	client.on('ready', onClientReady)
	subscriber.connect().catch((err: unknown) => log.warn('cannot open the invalidation connection', errorFields(err)))

	return {
		client,
		lookup: (key) => (trusted ? entries.get(key) : undefined),
		ticket: () => (trusted ? generation : null),
		fill(key, value, ticket) {
			if (trusted && ticket === generation) entries.set(key, value)
		},
		forget(key) {
			entries.delete(key)
		},
		async barrier(timeoutMs) {
			const nonce = crypto.randomUUID()
			let timer: ReturnType<typeof setTimeout> | undefined
			const answered = new Promise<void>((resolve) => {
				pendingBarriers.set(nonce, { got: 0, expected: null, done: resolve })
				timer = setTimeout(() => {
					log.warn('not every instance confirmed a cache invalidation in time', { timeout_ms: timeoutMs })
					resolve()
				}, timeoutMs)
			})
			try {
				// PUBLISH answers how many subscribers got it: that many acks are awaited.
				const receivers = await client.publish(barrierChannel, `${ackChannel} ${nonce}`)
				const pending = pendingBarriers.get(nonce)
				if (pending) pending.expected = receivers
				settleBarrier(nonce)
				await answered
			} catch {
				// Redis is unreachable: the write itself failed or will, and nothing can be served anyway.
			} finally {
				clearTimeout(timer)
				pendingBarriers.delete(nonce)
			}
		},
		async close() {
			closed = true
			clearInterval(heartbeat)
			distrust('closing')
			client.off('close', onClientClose)
			client.off('ready', onClientReady)
			subscriber.disconnect()
		},
	}
}
