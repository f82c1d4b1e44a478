import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type { Env } from '../../src/config'
import { createIn } from '../store/contract'
import { bearer, downloadPath, makeTestApp, randomBytesOf, type TestApp, uniquePrefix } from '../support/helpers'
import { waitFor } from '../support/poll'
import type { RedisServer } from '../support/redis-server'
import { infoFields } from '../support/resp'
import { lostWrites, recovery, type Sample, startLoad } from './load'

// The service-level guarantees every replicated topology must keep, written
// once and run against Cluster and Sentinel alike (cluster.test.ts,
// sentinel.test.ts). Figures for the README are printed with FIGURES.

/** Prefix of the lines that carry figures for the README. */
export const FIGURES = '[topology-figures]'

/** What a scenario needs to know about the topology under test. */
export interface Topology {
	readonly label: string
	/** The variables that point the service at it. */
	readonly env: Env
	/** The primary holding `user`'s keys. */
	primaryFor(user: string): Promise<RedisServer>
	/** The replica that takes over from `primary`. */
	replicaOf(primary: RedisServer): Promise<RedisServer>
	/** Waits until Redis itself completed the failover from `from` to `to`; returns when (ms epoch). */
	waitFailover(from: RedisServer, to: RedisServer, timeoutMs: number): Promise<number>
	/** Brings a killed or paused former primary back as a replica of `primary`, and waits until all is healthy. */
	restore(former: RedisServer, primary: RedisServer): Promise<void>
	/** Every primary, for memory figures. */
	primaries(): Promise<RedisServer[]>
	/** What Redis itself says about its primaries right now, for a failure message. */
	describe(): Promise<string>
	/** Settings each failover test runs under (e.g. cluster-require-full-coverage yes and no). */
	readonly variants: readonly FailoverVariant[]
}

/** A setting the failover tests are repeated under. */
export interface FailoverVariant {
	readonly name: string
	apply(): Promise<void>
}

/** The service answers 200 again within this long of Redis completing a failover. */
const RECOVERY_BUDGET_MS = 3000
/**
 * How long the durability tests wait for an idle instance to answer after a
 * failover (how fast it is back is asserted by the failover tests under load).
 */
const ACK_RECOVERY_WAIT_MS = 5000

/** No answer during a failover takes longer than this (the store's ~1 s budget plus HTTP). */
const FAIL_FAST_MS = 1600
/**
 * Without REDIS_MIN_REPLICAS_ACK a write is acknowledged before it is
 * replicated: one sent before the primary stops and acknowledged no earlier
 * than this before it may be lost with it (Redis' asynchronous replication:
 * seen 1 ms before and 4 ms after the fault, the 200 reaching the test after
 * Redis answered, in about one run in three under load on two cores). Every
 * other write, acknowledged earlier or sent after the fault, must survive it.
 */
const REPLICATION_WINDOW_MS = 100

/** The load's requests that write to Redis (each waits for the replicas with REDIS_MIN_REPLICAS_ACK). */
const WRITES: ReadonlySet<Sample['op']> = new Set(['issue', 'download', 'revoke'])

const FILE = 'clip.mp4'
const SHARED_PREFIX = uniquePrefix()
let users = 0
const uniqueUser = (what: string) => `${what}-${process.pid}-${++users}`

/**
 * A service instance on the topology. `store: 'memory'` only keeps
 * makeTestApp from adding REDIS_URL; `env` chooses the real store. Rate limits
 * are lifted: the load issues and is refused far more than 60 times a minute.
 */
export function serviceOn(topology: Topology, extra: Env = {}): Promise<TestApp> {
	return makeTestApp({
		store: 'memory',
		env: {
			...topology.env,
			// Instances of one deployment share the key prefix (makeTestApp picks a new one per app).
			REDIS_KEY_PREFIX: SHARED_PREFIX,
			RATE_LIMIT_ISSUE: '1000000/min',
			RATE_LIMIT_DENIED: '1000000/min',
			...extra,
		},
	})
}

/** `wait`, or its error with what Redis and the service said at that moment. */
async function explained<T>(t: Topology, app: TestApp, wait: Promise<T>): Promise<T> {
	try {
		return await wait
	} catch (err) {
		throw new Error(
			`${err instanceof Error ? err.message : String(err)}\nRedis: ${await t.describe()}\nservice:\n${redisLog(app)}`,
		)
	}
}

const revoke = (app: TestApp, token: string) =>
	app.request('/api/tokens/revoke', {
		method: 'POST',
		headers: { 'content-type': 'application/json' },
		body: JSON.stringify({ token }),
	})

/** The last lines an instance logged about Redis, for loud failures. */
const redisLog = (app: TestApp, lines = 12): string =>
	app.logLines
		.filter((l) => l.includes('redis'))
		.slice(-lines)
		.join('\n')

async function errorCode(res: Response): Promise<string> {
	const body = (await res.json().catch(() => ({}))) as { error?: string }
	return body.error ?? `(status ${res.status}, no error code)`
}

/**
 * Registers, inside the caller's describe, the service tests on a replicated
 * topology: two instances sharing budgets and revocations, memory figures,
 * failovers of a dead and of a hung primary under load, and replica
 * acknowledgement across a failover.
 */
export function serviceScenarios(topo: () => Topology): void {
	describe('two service instances', () => {
		let a: TestApp
		let b: TestApp
		beforeAll(async () => {
			a = await serviceOn(topo())
			b = await serviceOn(topo())
		})
		afterAll(async () => {
			await a?.close()
			await b?.close()
		})

		test('exactly N of 100 parallel full GETs of a max_uses=N token succeed, spread over both', async () => {
			const user = uniqueUser('budget')
			const body = randomBytesOf(32 * 1024)
			await a.putFile(user, FILE, body)
			await b.putFile(user, FILE, body)
			const uses = 7
			const { token } = await a.issue(user, FILE, `?max_uses=${uses}`)
			// 50 requests to each instance, in random order so neither is always first in line.
			const order = Array.from({ length: 100 }, (_, i) => i % 2).sort(() => Math.random() - 0.5)
			const results = await Promise.all(
				order.map(async (which) => {
					const app = which === 0 ? a : b
					const res = await app.request(downloadPath(user, FILE), { headers: bearer(token) })
					if (res.status !== 200) return { app: which, status: res.status, code: await errorCode(res), bytes: 0 }
					return { app: which, status: 200, code: '', bytes: (await res.arrayBuffer()).byteLength }
				}),
			)
			const ok = results.filter((r) => r.status === 200)
			expect(ok).toHaveLength(uses)
			expect(ok.every((r) => r.bytes === body.length)).toBe(true)
			expect(results.filter((r) => r.status !== 200).map((r) => r.code)).toEqual(
				Array.from({ length: 100 - uses }, () => 'token_used_up'),
			)
			console.log(
				`${FIGURES} ${topo().label}: ${uses} of 100 parallel GETs succeeded, ${ok.filter((r) => r.app === 0).length} on instance A and ${ok.filter((r) => r.app === 1).length} on B`,
			)
		})

		test('a revocation through one instance is refused by the other at the very next request', async () => {
			const user = uniqueUser('revoke')
			await a.putFile(user, FILE, 'bytes')
			await b.putFile(user, FILE, 'bytes')
			for (let i = 0; i < 10; i++) {
				const [via, other] = i % 2 === 0 ? [a, b] : [b, a]
				const { token } = await via.issue(user, FILE)
				// The other instance has seen the token live (whatever it may remember of it)…
				expect((await other.request(downloadPath(user, FILE), { headers: bearer(token) })).status).toBe(200)
				const revoked = await revoke(via, token)
				expect(revoked.status).toBe(200)
				// …and refuses it at once after the revocation was acknowledged.
				const next = await other.request(downloadPath(user, FILE), { headers: bearer(token) })
				expect(next.status).toBe(401)
				expect(await errorCode(next)).toBe('token_revoked')
			}
		})

		test('figures: Redis memory per live token', async () => {
			const count = 10_000
			const primaries = await topo().primaries()
			const streamKey = `${a.config.redisKeyPrefix}events`
			// The events stream grows with every token.issued, but it is bounded by EVENTS_MAX_LEN, not by the
			// live tokens: it is measured apart, once the instance has appended what it holds (on Cluster the
			// scripts hand their events to it, so without the flush part of them would land after the count).
			const used = async () => {
				await a.deps.events?.flush()
				let total = 0
				let stream = 0
				for (const p of primaries) {
					total += Number(infoFields(await p.query(['INFO', 'memory'])).get('used_memory'))
					// Only the primary that holds the stream's slot answers; the others redirect.
					const usage = await p.query(['MEMORY', 'USAGE', streamKey, 'SAMPLES', '0']).catch(() => null)
					if (typeof usage === 'number') stream += usage
				}
				return { total, stream }
			}
			const before = await used()
			const now = Math.floor(a.clock.now() / 1000)
			const jtis: { user: string; jti: string }[] = []
			// 1,000 users with 10 tokens each: the per-user index is part of the cost.
			for (let batch = 0; batch < count; batch += 500)
				await Promise.all(
					Array.from({ length: 500 }, (_, i) => {
						const n = batch + i
						const user = `mem-${process.pid}-${n % 1000}`
						const jti = crypto.randomUUID()
						jtis.push({ user, jti })
						return createIn(a.deps.store, {
							jti,
							userId: user,
							filename: 'a-typical-original-video-name.mp4',
							issuedAtS: now,
							expiresAtS: now + 900,
							maxUses: n % 2 === 0 ? 3 : null,
							budgetBytes: n % 2 === 0 ? 3 * 104_857_600 : null,
							allowanceBytes: n % 2 === 0 ? 8 * 1024 * 1024 : 0,
							sizeBytes: 104_857_600,
							policy: {},
							graceS: 0,
						})
					}),
				)
			const after = await used()
			const perToken = after.total - before.total - (after.stream - before.stream)
			const perEvent = (after.stream - before.stream) / count
			const sample = jtis[0]
			const primary = sample ? await topo().primaryFor(sample.user) : undefined
			const prefix = a.config.redisKeyPrefix
			const record = sample
				? await primary?.query(['MEMORY', 'USAGE', `${prefix}t:{${sample.user}}:${sample.jti}`, 'SAMPLES', '0'])
				: null
			console.log(
				`${FIGURES} ${topo().label}: ${Math.round(perToken / count)} bytes of used_memory per live token over ${count} tokens (1,000 users, half budgeted); MEMORY USAGE of one record: ${record} bytes; the events stream ${Math.round(perEvent)} bytes per token.issued (bounded by EVENTS_MAX_LEN)`,
			)
			expect(perToken / count).toBeLessThan(1024)
			// Events are on (the default with Redis): one token.issued per token, a few hundred bytes each.
			expect(perEvent).toBeGreaterThan(100)
			expect(perEvent).toBeLessThan(512)
		}, 60_000)
	})

	// Twice: as deployed by default, where Redis replicates after it answers (a write in flight at the
	// fault may be undone: reported, not failed), and with REDIS_MIN_REPLICAS_ACK=1, where the service
	// answers only once the replica has the write, so no acknowledged write at all may be undone.
	for (const replicasAck of [null, '1'] as const)
		describe(`failover under load${replicasAck === null ? '' : `, REDIS_MIN_REPLICAS_ACK=${replicasAck}`}`, () => {
			let a: TestApp
			let b: TestApp
			// An instance with no traffic during the failover: no command of its own fails, so only
			// re-reading the topology (slot refresh, the sentinels' announcements) can move it.
			let idle: TestApp
			const env: Env = replicasAck === null ? {} : { REDIS_MIN_REPLICAS_ACK: replicasAck }
			beforeAll(async () => {
				a = await serviceOn(topo(), env)
				b = await serviceOn(topo(), env)
				idle = await serviceOn(topo(), env)
			})
			afterAll(async () => {
				await a?.close()
				await b?.close()
				await idle?.close()
			})

			const kept = replicasAck === null ? 'nothing acknowledged before the fault lost' : 'nothing acknowledged lost'
			for (const fault of ['SIGKILL', 'SIGSTOP'] as const)
				test(`${fault} of the user's primary: back within 3 s of Redis's failover, nothing unsafe, ${kept}`, async () => {
					const t = topo()
					for (const variant of t.variants)
						await failover(t, variant, fault, { a, b, idle, everyWriteReplicated: replicasAck !== null })
				}, 120_000)
		})

	async function failover(
		t: Topology,
		variant: FailoverVariant,
		fault: 'SIGKILL' | 'SIGSTOP',
		{ a, b, idle, everyWriteReplicated }: { a: TestApp; b: TestApp; idle: TestApp; everyWriteReplicated: boolean },
	) {
		await variant.apply()
		const label = `${t.label}${variant.name ? ` (${variant.name})` : ''} ${fault}`
		const user = uniqueUser(fault)
		const body = randomBytesOf(16 * 1024)
		await a.putFile(user, FILE, body)
		await b.putFile(user, FILE, body)
		await idle.putFile(user, FILE, body)
		const { token: idleToken } = await a.issue(user, FILE)
		// The idle instance's connection to the primary is live before the fault.
		expect((await idle.request(downloadPath(user, FILE), { method: 'HEAD', headers: bearer(idleToken) })).status).toBe(
			200,
		)
		const primary = await t.primaryFor(user)
		const replica = await t.replicaOf(primary)
		const load = startLoad([a, b], user, FILE, body)
		let promotedAt = 0
		let faultAt = 0
		let idleFirst = 0
		// From when the primary can answer nothing more until it runs again (never, for SIGKILL, before the load ends).
		let stoppedAt = Number.POSITIVE_INFINITY
		let backAt = Number.POSITIVE_INFINITY
		try {
			await Bun.sleep(500)
			faultAt = Date.now()
			if (fault === 'SIGKILL') await primary.kill()
			else primary.pause()
			stoppedAt = Date.now()
			promotedAt = await t.waitFailover(primary, replica, 20_000)
			// The service has its 3 s to come back while the old primary is still dead or frozen…
			await Bun.sleep(Math.max(0, promotedAt + RECOVERY_BUDGET_MS - Date.now()))
			idleFirst = (await idle.request(downloadPath(user, FILE), { method: 'HEAD', headers: bearer(idleToken) })).status
			if (fault === 'SIGSTOP') {
				// …then the hung one wakes up, believing it is still primary, while the load
				// goes on: nothing acknowledged may be written to it any more.
				primary.resume()
				backAt = Date.now()
				await Bun.sleep(1500)
			}
		} finally {
			const report = await load.stop()
			await t.restore(primary, replica)
			const { lost, unreplicated, revokedUnacknowledged } = await lostWrites(a, user, FILE, report, {
				at: faultAt,
				windowMs: REPLICATION_WINDOW_MS,
			})
			const r = recovery(report, faultAt)
			console.log(
				`${FIGURES} ${label}: Redis failover ${promotedAt - faultAt} ms after the fault; service 200 again ${r.recoveredAt === null ? 'never' : `${r.recoveredAt - faultAt} ms after the fault (${r.recoveredAt - promotedAt} ms after Redis)`}; ${r.failures} answers 503, slowest ${r.slowestFailureMs} ms (${r.slowestFailureOp || 'none'}); ${report.samples.length} requests; ${unreplicated.length} write(s) in flight at the fault (acknowledged within ${REPLICATION_WINDOW_MS} ms of it) undone; ${revokedUnacknowledged} revocation(s) answered 503 and run all the same`,
			)
			// With every acknowledged write waited for by the replica that took over, none at all may be undone.
			const undone = everyWriteReplicated ? [...lost, ...unreplicated] : lost
			if (undone.length > 0 || report.violations.length > 0)
				console.error(`${label}: the service's last Redis log lines:\n${redisLog(a)}`)
			expect(report.violations).toEqual([])
			expect(undone).toEqual([])
			expect(promotedAt).toBeGreaterThan(0)
			// The idle instance's first request after the failover is served, not a 503.
			expect(idleFirst).toBe(200)
			// Fail fast: a store call gives up within ~1 s, retries included, and a write's WAIT with it.
			expect(r.slowestFailureMs).toBeLessThanOrEqual(FAIL_FAST_MS)
			// With the failed primary's only replica promoted and nothing else replicating it, no write can
			// have reached a replica: none may be acknowledged until the old primary runs again.
			const ackedAlone = report.samples.filter(
				(x) => WRITES.has(x.op) && x.status === 200 && x.start > stoppedAt && x.end < backAt,
			)
			expect(
				everyWriteReplicated ? ackedAlone.map((x) => `${x.op} ${x.end - faultAt} ms after the fault`) : [],
			).toEqual([])
			// Writes resume within 3 s of the failover. Not with REDIS_MIN_REPLICAS_ACK and these topologies'
			// one replica per primary: the promoted replica has none until the old primary is back, and
			// until then every write is refused, by design (README "Replica acknowledgement").
			if (!everyWriteReplicated) {
				expect(r.recoveredAt).not.toBeNull()
				expect((r.recoveredAt ?? Number.POSITIVE_INFINITY) - promotedAt).toBeLessThanOrEqual(RECOVERY_BUDGET_MS)
			}
		}
	}

	test('REDIS_MIN_REPLICAS_ACK=1: an acknowledged revocation survives a failover to a replica that was lagging', async () => {
		const t = topo()
		const app = await serviceOn(t, { REDIS_MIN_REPLICAS_ACK: '1' })
		const user = uniqueUser('ack')
		const primary = await t.primaryFor(user)
		const replica = await t.replicaOf(primary)
		try {
			await app.putFile(user, FILE, 'bytes')
			const { token } = await app.issue(user, FILE)
			// The replica stops reading, and 16 MiB queued ahead of the revocation fill
			// every socket buffer between the two: without WAIT, the revocation is
			// still in the primary's memory when it dies.
			replica.pause()
			await primary.query(['SET', `filler:{${user}}`, 'x'.repeat(16 * 1024 * 1024)], 5000)
			const revoking = revoke(app, token)
			const thaw = Bun.sleep(150).then(() => replica.resume())
			const revoked = await revoking
			await primary.kill()
			await thaw
			expect(revoked.status).toBe(200)
			await t.waitFailover(primary, replica, 20_000)
			// HEAD only checks (a GET's reservation would wait for a replica the new primary does not have yet).
			const after = await explained(
				t,
				app,
				waitFor('the service answering after the failover', ACK_RECOVERY_WAIT_MS, async () => {
					const res = await app.request(downloadPath(user, FILE), { method: 'HEAD', headers: bearer(token) })
					return res.status === 503 ? 'still 503' : res
				}),
			)
			expect(after.status).toBe(401)
		} finally {
			await app.close()
			await t.restore(primary, replica)
			await replica.query(['DEL', `filler:{${user}}`]).catch(() => null)
		}
	}, 60_000)

	test('REDIS_MIN_REPLICAS_ACK=1: an acknowledged budget take survives a failover to a replica that was lagging', async () => {
		const t = topo()
		const app = await serviceOn(t, { REDIS_MIN_REPLICAS_ACK: '1' })
		const user = uniqueUser('ack-take')
		const primary = await t.primaryFor(user)
		const replica = await t.replicaOf(primary)
		try {
			const video = await app.putFile(user, FILE, 'one-time video bytes')
			const { token, jti } = await app.issue(user, FILE, '?max_uses=1')
			// As above: the replica lags 16 MiB behind when the one-time download takes its budget.
			replica.pause()
			await primary.query(['SET', `filler:{${user}}`, 'x'.repeat(16 * 1024 * 1024)], 5000)
			const downloading = app.request(downloadPath(user, FILE), { headers: bearer(token) })
			const thaw = Bun.sleep(150).then(() => replica.resume())
			const served = await downloading
			expect(served.status).toBe(200)
			expect(new Uint8Array(await served.arrayBuffer())).toEqual(video)
			await primary.kill()
			await thaw
			await t.waitFailover(primary, replica, 20_000)
			// The new primary still knows the budget was spent: the token is not live any more.
			const listed = await explained(
				t,
				app,
				waitFor('the listing answering after the failover', ACK_RECOVERY_WAIT_MS, async () => {
					const res = await app.request(`/api/users/${user}/tokens`)
					return res.status === 503 ? 'still 503' : res
				}),
			)
			expect(listed.status).toBe(200)
			const { tokens } = (await listed.json()) as { tokens: { jti: string }[] }
			expect(tokens.map((x) => x.jti)).not.toContain(jti)
		} finally {
			await app.close()
			await t.restore(primary, replica)
			await replica.query(['DEL', `filler:{${user}}`]).catch(() => null)
		}
	}, 60_000)
}
