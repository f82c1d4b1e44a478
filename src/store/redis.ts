import type { ChainableCommander } from 'ioredis'
import type { Clock } from '../clock'
import { StoreUnavailableError } from '../errors'
import { type EventEntry, newEventIdBase, type StoreEvents } from './events'
import { CANCEL, CREATE, PAGE, PRUNE, REVOKE, SETTLE, TAKE } from './redis-scripts'
import { defineScripts, type RedisClient, type Script, toInt } from './scripts'
import type { TrackedCache } from './tracking'
import {
	type CreateResult,
	type EventContext,
	POSITION_PATTERN,
	type TakeResult,
	type TokenInfo,
	type TokenStore,
} from './types'

export type { RedisClient } from './scripts'

const UNLIMITED: TakeResult = Object.freeze({ status: 'ok', budgeted: false })

/** A script's reply `{status, {values}, {events}}`; RESP2 and RESP3 alike send bulk strings and integers. */
interface Reply {
	readonly status: string
	readonly values: readonly unknown[]
	readonly events: readonly unknown[]
}

function replyOf(reply: unknown, script: string): Reply {
	const [status, values, events] = Array.isArray(reply) ? (reply as unknown[]) : []
	if (typeof status !== 'string' && !(status instanceof Buffer))
		throw new StoreUnavailableError(new Error(`unexpected ${script} reply ${String(reply)}`))
	return {
		status: String(status),
		values: Array.isArray(values) ? values : [],
		events: Array.isArray(events) ? events : [],
	}
}

const unexpected = (script: string, status: string) =>
	new StoreUnavailableError(new Error(`unexpected ${script} status ${status}`))

/** TAKE's reply as a TakeResult; an unknown status means a script this code does not know. */
function takeResult({ status, values }: Reply): TakeResult {
	switch (status) {
		case 'ok_unlimited':
			return UNLIMITED
		case 'ok':
			return { status: 'ok', budgeted: true, bytesLeft: toInt(values[0]) }
		case 'used_up':
			return { status: 'used_up', bytesLeft: toInt(values[0]) }
		case 'too_many_downloads':
			return { status, retryAfterS: TOO_MANY_DOWNLOADS_RETRY_S }
		case 'missing':
		case 'revoked':
		case 'mismatch':
		case 'expired':
		case 'cancelled':
			return { status }
		default:
			throw unexpected('take', status)
	}
}

/** CREATE's reply as a CreateResult. */
function createResult({ status, values }: Reply): CreateResult {
	switch (status) {
		case 'created':
		case 'too_many_live':
			return { status }
		case 'rate_limited':
			return { status: 'rate_limited', retryAfterS: Math.ceil(toInt(values[0]) / 1000) }
		default:
			throw unexpected('create', status)
	}
}

/**
 * When a user holds every download slot, how long to wait before asking
 * again: the service cannot know when a body will end, and a few seconds
 * keeps a polling client cheap.
 */
const TOO_MANY_DOWNLOADS_RETRY_S = 5

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
/** Expired listing entries one step drops. */
const PRUNE_BATCH = 200
/**
 * Records one command of a listing page reads. A command per token (a
 * pipeline of HMGETs) left ~0.5 MB of client objects per page of 1,000; a
 * script per 100 leaves a tenth of it and holds Redis well under a millisecond.
 */
const PAGE_CHUNK = 100
/** The record fields a listing shows, in the order `PAGE` answers them. */
const PAGE_FIELDS = 9

/** The field of a reservation in the token's record. */
const reservationField = (reservation: string) => `v:${reservation}`

/** A JSON member list (`,"k":v…`) of the policy and limits `token.issued` carries. */
function issuedFields(r: Parameters<TokenStore['create']>[0], iso: (s: number) => string): string {
	return `,${JSON.stringify({
		expires_at: iso(r.expiresAtS),
		max_uses: r.maxUses,
		size: r.sizeBytes,
		not_before: r.policy.nbf === undefined ? null : iso(r.policy.nbf),
		ip: r.policy.cidr ?? null,
		rate: r.policy.rate ?? null,
	}).slice(1, -1)}`
}

/**
 * The Redis token store. It is given a ready client and does not close it:
 * whoever built the client (deps.ts) closes it. Every failure of the client,
 * and writes the replicas did not acknowledge in time, become `StoreUnavailableError`.
 */
export function createRedisTokenStore(client: RedisClient, opts: RedisStoreOptions): TokenStore {
	const { prefix, clock, cache } = opts
	const events = opts.events ?? { mode: 'off' as const }
	const ack = opts.minReplicasAck ?? 0
	const ackTimeoutMs = opts.replicaAckTimeoutMs ?? 500
	const definitions = {
		create: { lua: CREATE },
		take: { lua: TAKE },
		settle: { lua: SETTLE },
		cancel: { lua: CANCEL },
		revoke: { lua: REVOKE },
		prune: { numberOfKeys: 2, lua: PRUNE },
		page: { lua: PAGE },
	}
	const scripts = defineScripts(client, definitions)
	// Takes go through the tracked connection when there is a cache, so their reads can fill it;
	// while that connection is reconnecting they go through the main one and fill nothing.
	const trackedTake = cache ? defineScripts(cache.client, { take: definitions.take }).take : null
	const tokenKey = (userId: string, jti: string) => `${prefix}t:{${userId}}:${jti}`
	const byExpiryKey = (userId: string) => `${prefix}ue:{${userId}}`
	const byPositionKey = (userId: string) => `${prefix}ul:{${userId}}`
	const slotsKey = (userId: string) => `${prefix}dl:{${userId}}`
	const issueLimitKey = (userId: string) => `${prefix}rl:issue:{${userId}}`
	// Tokens issued before the listing had two indexes lived in this one; revoke-all still drains it.
	const legacyIndexKey = (userId: string) => `${prefix}u:{${userId}}`
	const nowS = () => Math.floor(clock() / 1000)
	const iso = (s: number) => new Date(s * 1000).toISOString().replace('.000Z', 'Z')

	async function guard<T>(op: () => Promise<T>): Promise<T> {
		try {
			return await op()
		} catch (err) {
			throw err instanceof StoreUnavailableError ? err : new StoreUnavailableError(err)
		}
	}

	// Runs `pipeline` followed by WAIT on the same connection (and, on Cluster,
	// the same node): resolves with the first command's reply once `ack`
	// replicas have everything written before it, else rejects.
	async function acknowledged(pipeline: ChainableCommander): Promise<unknown> {
		return guard(async () => {
			const replies = (await pipeline.wait(ack, ackTimeoutMs).exec()) ?? []
			for (const [err] of replies) if (err) throw err
			const acked = toInt(replies.at(-1)?.[1] ?? 0)
			if (!(acked >= ack)) throw new Error(`only ${acked} of ${ack} replicas acknowledged the write`)
			return replies[0]?.[1]
		})
	}

	// The event arguments every script takes first (ARGV[1..7]) and the stream key it writes to, if inline.
	function withEvents(userId: string, jti: string, context: EventContext | undefined, keys: string[]) {
		const mode = events.mode
		const args = [
			mode,
			mode === 'off' ? '' : newEventIdBase(),
			mode === 'off' ? '' : new Date(clock()).toISOString(),
			mode === 'off' ? 0 : events.maxLen,
			context?.requestId ?? '',
			userId,
			jti,
		]
		return { keys: mode === 'inline' ? [...keys, events.key] : keys, args }
	}

	// Runs a script with the event arguments; hands entries it returned (Cluster) to the writer.
	async function run(
		script: Script,
		name: string,
		event: { userId: string; jti: string; context?: EventContext | undefined },
		keys: string[],
		args: readonly (string | number)[],
		options: { write: boolean; via?: Script } = { write: true },
	): Promise<Reply> {
		const prepared = withEvents(event.userId, event.jti, event.context, keys)
		const fullArgs = [...prepared.args, ...args]
		const raw =
			options.write && ack > 0
				? await acknowledged(script.queue(client.pipeline(), prepared.keys, fullArgs))
				: await (options.via ?? script).run(prepared.keys, fullArgs)
		const reply = replyOf(raw, name)
		if (reply.events.length > 0 && events.mode !== 'off') {
			if (events.mode === 'return') {
				const entries: EventEntry[] = []
				for (let i = 0; i + 3 < reply.events.length; i += 4)
					entries.push({
						id: String(reply.events[i]),
						type: String(reply.events[i + 1]),
						timestamp: String(reply.events[i + 2]),
						data: String(reply.events[i + 3]),
					})
				events.write(entries)
			} else events.written(reply.events.map(String))
		}
		return reply
	}

	// After a take that charged: WAIT on the connection that ran it, reached
	// through a keyed no-op (on Cluster, the node owning the key). A take that
	// wrote nothing (a refusal, an unlimited token) waits for nothing.
	async function replicated(via: RedisClient, key: string): Promise<void> {
		if (ack > 0) await acknowledged(via.pipeline().exists(key))
	}

	async function prune(userId: string): Promise<void> {
		await scripts.prune.run([byExpiryKey(userId), byPositionKey(userId)], [nowS(), PRUNE_BATCH])
	}

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
				await replicated(tracked ? cache.client : client, key)
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
				const position: string | null = after
				const members: string[] = await guard(() =>
					client.zrange(
						byPositionKey(userId),
						position === null ? '+' : `(${position}`,
						'-',
						'BYLEX',
						'REV',
						'LIMIT',
						0,
						REVOKE_BATCH,
					),
				)
				if (members.length === 0) break
				const jtis = members.map((m) => m.slice(13))
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
			await prune(userId)
			// One member more than the page: whether another page follows is known now, so the
			// last page (even a full one) says so and no client asks for an empty one.
			const found = await guard(() =>
				client.zrange(
					byPositionKey(userId),
					page.after === undefined ? '+' : `(${page.after}`,
					'-',
					'BYLEX',
					'REV',
					'LIMIT',
					0,
					page.limit + 1,
				),
			)
			const more = found.length > page.limit
			const members = more ? found.slice(0, page.limit) : found
			if (members.length === 0) return { tokens: [], next: null }
			const chunks: string[][] = []
			for (let from = 0; from < members.length; from += PAGE_CHUNK) chunks.push(members.slice(from, from + PAGE_CHUNK))
			const replies = await guard(() =>
				Promise.all(
					chunks.map((chunk) =>
						scripts.page.run(
							chunk.map((m) => tokenKey(userId, m.slice(13))),
							[],
						),
					),
				),
			)
			const fields = replies.flatMap((reply) => (Array.isArray(reply) ? (reply as (string | null)[]) : []))
			if (fields.length !== members.length * PAGE_FIELDS)
				throw new StoreUnavailableError(new Error(`unexpected page reply of ${fields.length} fields`))
			const now = nowS()
			const tokens: TokenInfo[] = []
			members.forEach((member, n) => {
				const [f, i, e, m, b, r, nbf, cidr, rate] = fields.slice(n * PAGE_FIELDS, (n + 1) * PAGE_FIELDS)
				const jti = member.slice(13)
				// Revoked, expired and used-up tokens are not live.
				if (f == null || e == null || r != null || Number(e) <= now || b === '0') return
				tokens.push({
					jti,
					filename: f,
					issuedAtS: Number(i),
					expiresAtS: Number(e),
					maxUses: m == null ? null : Number(m),
					bytesLeft: b == null ? null : Number(b),
					policy: {
						...(nbf != null ? { nbf: Number(nbf) } : {}),
						...(cidr != null ? { cidr: JSON.parse(cidr) as string[] } : {}),
						...(rate != null ? { rate: Number(rate) } : {}),
					},
				})
			})
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
