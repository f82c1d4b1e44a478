import type { Clock } from '../clock'
import type { StoreEvents } from './events'
import { redisKeys } from './redis-keys'
import { createRedisListing } from './redis-listing'
import { createResult, issuedFields, takeResult, UNLIMITED } from './redis-replies'
import { createScriptRunner } from './redis-runner'
import { CANCEL, CREATE, REVOKE, SETTLE, TAKE } from './redis-scripts'
import { defineScripts, type RedisClient, toInt } from './scripts'
import type { TrackedCache } from './tracking'
import {
	type CreateResult,
	type EventContext,
	jtiOfPosition,
	POSITION_PATTERN,
	type TakeResult,
	type TokenStore,
} from './types'

export type { RedisClient } from './scripts'

/** Options of the Redis store. */
export interface RedisStoreOptions {
	readonly prefix: string
	readonly clock: Clock
	/** Writes return only once this many replicas acknowledged them (`WAIT`); 0 = off. */
	readonly minReplicasAck?: number
	/** How long `WAIT` may take, in ms (inside the command timeout). */
	readonly replicaAckTimeoutMs?: number
	/**
	 * Unlimited tokens' state remembered per process, kept coherent by Redis
	 * (see tracking.ts): a token checked once is then checked without a round
	 * trip until any client changes its record. Budget takes always go to Redis.
	 */
	readonly cache?: TrackedCache
	/** Where the scripts' lifecycle events go (docs/contract.md §7); none when absent. */
	readonly events?: StoreEvents
}

/** How long a revocation waits for every instance to confirm it dropped its cached copy. */
const BARRIER_TIMEOUT_MS = 500
/**
 * Tokens one step of a bulk revocation touches. Each revoked token costs its
 * script five commands and an event (~30 µs): 25 keep a step near 1 ms, so
 * another client's command never waits long behind one (200 took 5-10 ms).
 */
const REVOKE_BATCH = 25
/** The field of a reservation in the token's record. */
const reservationField = (reservation: string) => `v:${reservation}`

/**
 * The Redis token store. It is given a ready client and does not close it:
 * whoever built the client (deps.ts) closes it. Every failure of the client,
 * and writes the replicas did not acknowledge in time, become `StoreUnavailableError`.
 */
export function createRedisTokenStore(client: RedisClient, opts: RedisStoreOptions): TokenStore {
	const { prefix, clock, cache } = opts
	const events = opts.events ?? { mode: 'off' as const }
	const { guard, run, replicated } = createScriptRunner(client, {
		clock,
		events,
		minReplicasAck: opts.minReplicasAck ?? 0,
		replicaAckTimeoutMs: opts.replicaAckTimeoutMs ?? 500,
	})
	const definitions = {
		create: { lua: CREATE },
		take: { lua: TAKE },
		settle: { lua: SETTLE },
		cancel: { lua: CANCEL },
		revoke: { lua: REVOKE },
	}
	const scripts = defineScripts(client, definitions)
	// Takes go through the tracked connection when there is a cache, so their reads can fill it;
	// while that connection is reconnecting they go through the main one and fill nothing.
	const trackedTake = cache ? defineScripts(cache.client, { take: definitions.take }).take : null

	const {
		token: tokenKey,
		byExpiry: byExpiryKey,
		byPosition: byPositionKey,
		slots: slotsKey,
		issueLimit: issueLimitKey,
		legacyIndex: legacyIndexKey,
	} = redisKeys(prefix)
	const nowS = () => Math.floor(clock() / 1000)
	const iso = (s: number) => new Date(s * 1000).toISOString().replace('.000Z', 'Z')

	const listing = createRedisListing(client, prefix, guard)

	/** Revokes the records of `jtis` (of `filename` only, when given); the count of newly revoked ones and of known ones. */
	async function revokeMany(
		userId: string,
		jtis: readonly string[],
		filename: string,
		scope: 'token' | 'user' | 'file',
		context: EventContext | undefined,
	): Promise<{ fresh: number; known: number }> {
		const keys = jtis.map((jti) => tokenKey(userId, jti))
		for (const key of keys) cache?.forget(key)
		const reply = await run(
			scripts.revoke,
			'revoke',
			{ userId, jti: '', context },
			[byExpiryKey(userId), byPositionKey(userId), ...keys],
			[filename, jtis.length, context?.by ?? 'service', scope, ...jtis],
		)
		return { fresh: toInt(reply.values[0]), known: toInt(reply.values[1]) }
	}

	return {
		async create(r, options): Promise<CreateResult> {
			const now = nowS()
			const recordTtlMs = Math.max(1, (r.expiresAtS + r.graceS - now) * 1000)
			const limit = options.issueLimit
			const reply = await run(
				scripts.create,
				'create',
				{ userId: r.userId, jti: r.jti, context: options },
				[tokenKey(r.userId, r.jti), byExpiryKey(r.userId), byPositionKey(r.userId), issueLimitKey(r.userId)],
				[
					r.filename,
					r.issuedAtS,
					r.expiresAtS,
					recordTtlMs,
					r.maxUses ?? '',
					r.budgetBytes ?? '',
					r.allowanceBytes,
					now,
					limit?.limit ?? 0,
					(limit?.windowS ?? 0) * 1000,
					options.maxLive,
					r.sizeBytes,
					r.policy.nbf ?? '',
					r.policy.cidr === undefined ? '' : JSON.stringify(r.policy.cidr),
					r.policy.rate ?? '',
					issuedFields(r, iso),
				],
			)
			return createResult(reply)
		},

		async take(userId, jti, bytes, options = {}): Promise<TakeResult> {
			const key = tokenKey(userId, jti)
			const lease = bytes > 0 ? options.lease : undefined
			// The remembered state of an unlimited token: exists, not revoked, for this file. It is
			// remembered only from a take that also recorded the first body (with a grace), so a
			// hit needs no write; a slot or an expired token always asks Redis.
			const rememberable = lease === undefined && options.expiredAtS === undefined
			const remembered = rememberable ? cache?.lookup(key) : undefined
			if (remembered !== undefined && remembered === options.filename) return UNLIMITED
			// A take that holds a slot reads the slot key, which must not be tracked (its changes would flood every cache).
			const tracked =
				lease === undefined && cache !== undefined && trackedTake !== null && cache.client.status === 'ready'
			const ticket = tracked ? cache.ticket() : null
			const nowMs = clock()
			const startedMs = performance.now()
			const reply = await run(
				scripts.take,
				'take',
				{ userId, jti, context: options },
				[key, slotsKey(userId)],
				[
					bytes,
					options.filename ?? '',
					options.reservation ? reservationField(options.reservation) : '',
					options.start ?? 0,
					Math.floor(nowMs / 1000),
					options.expiredAtS ?? '',
					options.markStart ? '1' : '',
					lease?.id ?? '',
					lease?.limit ?? 0,
					nowMs,
					lease?.ttlMs ?? 0,
				],
				{ write: false, ...(tracked ? { via: trackedTake } : {}) },
			)
			const result = takeResult(reply)
			const admitted = bytes > 0 && result.status === 'ok'
			// What a body's take may have written (a charge, a slot, the first body's time) must reach the replicas.
			if (admitted && (result.budgeted || lease !== undefined || options.markStart))
				await replicated(tracked ? cache.client : client, key, startedMs)
			const fillable = rememberable && (options.markStart !== true || bytes > 0)
			if (tracked && fillable && result === UNLIMITED && options.filename !== undefined)
				cache.fill(key, options.filename, ticket)
			return result
		},

		async settle(userId, jti, reservation, written, broken, options) {
			const reply = await run(
				scripts.settle,
				'settle',
				{ userId, jti, context: options },
				[tokenKey(userId, jti), byExpiryKey(userId), byPositionKey(userId)],
				[reservationField(reservation), Math.max(0, written), broken ? '1' : '0'],
			)
			return toInt(reply.values[0])
		},

		async cancel(userId, jti, reservation) {
			await run(
				scripts.cancel,
				'cancel',
				{ userId, jti },
				[tokenKey(userId, jti), byExpiryKey(userId), byPositionKey(userId)],
				[reservationField(reservation)],
			)
		},

		async release(userId, leaseIds) {
			if (leaseIds.length === 0) return
			await guard(() => client.zrem(slotsKey(userId), ...leaseIds))
		},

		async renew(userId, leaseIds, ttlMs) {
			if (leaseIds.length === 0) return
			const until = clock() + ttlMs
			await guard(async () => {
				const key = slotsKey(userId)
				const pipeline = client.pipeline()
				// XX: a slot already freed (its body ended, or it lapsed) is not brought back.
				for (const id of leaseIds) pipeline.zadd(key, 'XX', String(until), id)
				pipeline.pexpire(key, ttlMs)
				for (const [err] of (await pipeline.exec()) ?? []) if (err) throw err
			})
		},

		async revoke(userId, jti, context) {
			const { known } = await revokeMany(userId, [jti], '', 'token', context)
			// Answered only once every instance dropped its copy: refused everywhere from the next request.
			await cache?.barrier(BARRIER_TIMEOUT_MS)
			return known === 1
		},

		async revokeAll(userId, filename, context) {
			const scope = filename === undefined ? 'user' : 'file'
			let revoked = 0
			// Walks the listing a batch at a time: each step is one short script, so a user with
			// tens of thousands of tokens never holds Redis (or a Cluster shard) for long.
			let after: string | null = null
			for (;;) {
				const members = await listing.positionsBefore(userId, after, REVOKE_BATCH)
				if (members.length === 0) break
				const jtis = members.map(jtiOfPosition)
				revoked += (await revokeMany(userId, jtis, filename ?? '', scope, context)).fresh
				if (members.length < REVOKE_BATCH) break
				after = members.at(-1) ?? null
			}
			for (let offset = 0; ; offset += REVOKE_BATCH) {
				const from = offset
				const legacy = await guard(() =>
					client.zrange(legacyIndexKey(userId), String(from), String(from + REVOKE_BATCH - 1)),
				)
				if (legacy.length === 0) break
				revoked += (await revokeMany(userId, legacy, filename ?? '', scope, context)).fresh
			}
			if (revoked > 0) await cache?.barrier(BARRIER_TIMEOUT_MS)
			return revoked
		},

		async list(userId, page) {
			if (page.after !== undefined && !POSITION_PATTERN.test(page.after)) throw new Error('not a listing position')
			await listing.prune(userId, nowS())
			// One member more than the page: whether another page follows is known now, so the
			// last page (even a full one) says so and no client asks for an empty one.
			const found = await listing.positionsBefore(userId, page.after ?? null, page.limit + 1)
			const more = found.length > page.limit
			const members = more ? found.slice(0, page.limit) : found
			if (members.length === 0) return { tokens: [], next: null }
			const tokens = await listing.liveTokens(userId, members, nowS())
			return { tokens, next: more ? (members.at(-1) ?? null) : null }
		},

		peek(userId, jti, filename) {
			return cache !== undefined && cache.lookup(tokenKey(userId, jti)) === filename
		},

		async ping() {
			await guard(() => client.ping())
		},

		async close() {},
	}
}
